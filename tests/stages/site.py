"""A small, real website for stage tests: static pages served by http.server on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

from cli.demo_site import static_site

PARAGRAPH = (
    "Dagster models pipelines as software-defined assets. Each asset is a noun, computed from its upstream "
    "assets, versioned by its code and data, and visible in a web interface with its lineage and metadata. "
)


def write_site(root: Path, pages: int = 6) -> None:
    """pages linked in a chain and from an index, plus robots.txt that disallows /private/."""
    root.mkdir(parents=True, exist_ok=True)
    links = "".join(f'<li><a href="page{i}.html">Page {i}</a></li>' for i in range(pages))
    (root / "index.html").write_text(
        f"<html lang='en'><head><title>Index</title></head><body><nav><ul>{links}</ul></nav>"
        f"<p>{PARAGRAPH * 3}</p><a href='/private/secret.html'>secret</a></body></html>"
    )
    for i in range(pages):
        license_link = '<a rel="license" href="https://creativecommons.org/licenses/by/4.0/">CC BY 4.0</a>'
        body = f"<h1>Topic {i}</h1>" + f"<p>Page {i} explains topic {i}. {PARAGRAPH * 4}</p>" * 3
        (root / f"page{i}.html").write_text(
            f"<html lang='en'><head><title>Topic {i}</title></head><body><nav><a href='index.html'>Home</a>"
            f"<a href='page{(i + 1) % pages}.html'>Next</a></nav><article>{body}</article>"
            f"<footer>{license_link if i % 2 == 0 else ''}</footer></body></html>"
        )
    (root / "private").mkdir(exist_ok=True)
    (root / "private" / "secret.html").write_text("<html><body>secret</body></html>")
    (root / "robots.txt").write_text("User-agent: *\nDisallow: /private/\n")


def serve_directory(root: Path, port: int = 0):
    """Serve `root` over HTTP on 127.0.0.1 (at `port`; 0: a free one); a context manager yielding the base URL."""
    return static_site(root, port=port)
