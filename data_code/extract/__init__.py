"""The extract stage: crawl WARC files -> Documents (main text + provenance) and extraction rejections.

from data_code.extract import ExtractConfig, extract_to_parquet
stats = extract_to_parquet(["crawl.warc.gz"], "documents.parquet", "rejections.parquet", ExtractConfig())
"""

from data_code.extract.config import ENGINES, ExtractConfig, ExtractStats
from data_code.extract.page import extract_text
from data_code.extract.pipeline import extract_to_parquet

__all__ = ["ENGINES", "ExtractConfig", "ExtractStats", "extract_text", "extract_to_parquet"]
