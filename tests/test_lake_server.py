"""The read-only lake server of `lmforge ui`: artifacts and reports open over http, nothing can be written."""

from __future__ import annotations

import httpx

from cli.ui import lake_server


def test_artifacts_open_over_http_and_nothing_is_writable(tmp_path):
    report = tmp_path / "lake" / "audit_report" / "abc123" / "report.html"
    report.parent.mkdir(parents=True)
    report.write_text("<h1>audit</h1>")
    (tmp_path / "secret.txt").write_text("outside the lake")
    with lake_server(tmp_path / "lake", 0) as url:
        assert httpx.get(f"{url}/audit_report/abc123/report.html").text == "<h1>audit</h1>"
        listing = httpx.get(f"{url}/audit_report/abc123/")
        assert listing.status_code == 200 and "report.html" in listing.text  # a directory lists its files
        assert httpx.put(f"{url}/audit_report/abc123/report.html", content=b"x").status_code == 501
        assert httpx.post(f"{url}/audit_report/abc123/new.html", content=b"x").status_code == 501
        assert httpx.delete(f"{url}/audit_report/abc123/report.html").status_code == 501
        assert "outside" not in httpx.get(f"{url}/../secret.txt").text
    assert report.read_text() == "<h1>audit</h1>"
