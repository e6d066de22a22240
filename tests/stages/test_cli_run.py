"""`lmforge run JOB --config my.yaml --partition DAY` on a fresh home: the documented form of running a job on
one's own site. data_refresh trains the quality classifier it needs; the console gets one line per asset; the full
log lands under $LMFORGE_HOME/logs; bad input is refused naming the input."""

import pytest
import yaml
from dagster import DagsterInstance, DagsterRunStatus

from cli.demo_site import static_site
from cli.main import main
from cli.recovery import HOST_TAG, PID_TAG
from lineage.settings import Settings
from tests.stages.prose_site import write_prose_site

DAY = "2026-11-30"


@pytest.fixture
def site(tmp_path):
    write_prose_site(tmp_path / "site")  # distinct prose pages: they pass dedupe and the corpus contract
    # A fixed port: URLs, so doc ids and each page's split, are the same every run (both splits hold pages).
    with static_site(tmp_path / "site", port=18647) as url:
        yield url


@pytest.mark.slow
def test_data_refresh_runs_on_a_fresh_home_with_one_line_per_asset(lmforge_home, site, tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("LMFORGE_ALLOW_PRIVATE_HOSTS", "127.0.0.1")
    config = tmp_path / "my.yaml"
    ops = {
        "raw_crawl": {"config": {"seeds": [site + "index.html"]}},
        "token_shards": {"config": {"validation_fraction": 0.5}},  # a handful of pages: both splits hold some
    }
    config.write_text(yaml.safe_dump({"ops": ops}))

    assert main(["run", "data_refresh", "--config", str(config), "--partition", DAY]) == 0

    out = capfd.readouterr().out  # the console: one line per asset, the library chatter is in the log file
    lines = [line.split() for line in out.splitlines() if line.startswith("  ") and "full log" not in line]
    assert [words[0] for words in lines] == [
        "quality_classifier",
        "raw_crawl",
        "documents",
        "deduplicated_documents",
        "filtered_documents",
        "training_corpus",
        "tokenizer",
        "token_shards",
        "shard_set",
    ]
    assert all(words[-1] == "s" for words in lines)  # each with its time
    assert any(word.startswith("pages_fetched=") and word != "pages_fetched=0" for word in lines[1])
    assert "data_refresh succeeded" in out
    [log] = (Settings.from_env().home / "logs").glob("data_refresh-*.log")
    text = log.read_text()
    assert "STEP_SUCCESS" in text and log.name.split("-", 1)[1].removesuffix(".log") in out
    assert all(line.startswith(("lmforge run:", "  ")) for line in out.splitlines()), out  # nothing else
    with DagsterInstance.get() as instance:
        [run] = instance.get_runs()
        assert run.status == DagsterRunStatus.SUCCESS and run.tags[PID_TAG] and run.tags[HOST_TAG]
        assert run.tags["dagster/partition"] == DAY
        # Filed under workspace.yaml's code location, as the UI files its own runs: its job page lists it and
        # "Re-execute" works (tests/browser/test_rerun_from_ui.py re-executes one).
        assert run.remote_job_origin.location_name == "definitions.py"
        assert run.remote_job_origin.job_name == "data_refresh"


@pytest.mark.parametrize(
    ("arguments", "content", "expected"),
    [
        (["run", "no_such_job"], None, "no job named 'no_such_job'; the jobs are: compliance_check, data_refresh"),
        (["run", "retrain", "--partition", DAY], None, "job retrain is not partitioned"),
        (["run", "data_refresh", "--config", "CONFIG"], "ops: [unclosed", "is not valid YAML"),
        (["run", "data_refresh", "--config", "CONFIG"], "- a\n- list\n", "must be a mapping"),
        (["run", "data_refresh", "--config", "missing.yaml"], None, "run config missing.yaml does not exist"),
    ],
)
def test_bad_input_is_refused_naming_it(lmforge_home, tmp_path, capsys, arguments, content, expected):
    if content is not None:
        config = tmp_path / "bad.yaml"
        config.write_text(content)
        arguments = [str(config) if argument == "CONFIG" else argument for argument in arguments]
    assert main(arguments) == 2
    error = capsys.readouterr().err
    assert expected in error, error
    if content is not None:
        assert str(tmp_path / "bad.yaml") in error
