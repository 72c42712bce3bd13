from pathlib import Path

from taskcodec.settings import Settings


def test_defaults_put_everything_under_home(monkeypatch, tmp_path):
    monkeypatch.setenv("TASKCODEC_HOME", str(tmp_path / "h"))
    s = Settings()
    assert s.home_dir == (tmp_path / "h").resolve()
    assert s.db_url == f"sqlite:///{(tmp_path / 'h').resolve() / 'taskcodec.db'}"
    assert s.prefect_home == (tmp_path / "h").resolve() / "prefect"
    assert s.grounding == "yolox+saliency" and s.uncovered == "area"


def test_toml_file_is_read_and_env_wins(monkeypatch, tmp_path):
    cfg = tmp_path / "taskcodec.toml"
    cfg.write_text('grounding = "opencv"\ndatabase_url = "sqlite:////tmp/x.db"\nmax_image_pixels = 1234\n')
    monkeypatch.setenv("TASKCODEC_CONFIG", str(cfg))
    monkeypatch.delenv("TASKCODEC_DATABASE_URL", raising=False)
    s = Settings()
    assert s.db_url == "sqlite:////tmp/x.db"
    assert s.max_image_pixels == 1234
    monkeypatch.setenv("TASKCODEC_MAX_IMAGE_PIXELS", "99")
    assert Settings().max_image_pixels == 99


def test_openai_api_key_is_accepted(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.delenv("TASKCODEC_LLM_API_KEY", raising=False)
    assert Settings().llm_api_key == "sk-test"


def test_shared_dir_default_is_beside_the_checkout(monkeypatch):
    """Run from the checkout (as the README's commands are), the default finds ../shared beside it."""
    repo = Path(__file__).resolve().parents[2]
    monkeypatch.delenv("TASKCODEC_SHARED_DIR", raising=False)
    monkeypatch.chdir(repo)
    assert Settings().shared_path == repo.parent / "shared"
    monkeypatch.chdir(repo / "tests")  # from elsewhere it follows the working directory, as a relative path does
    assert Settings().shared_path == repo / "shared"


def test_prefect_is_configured_by_the_entry_point_not_by_importing_the_flows(tmp_path):
    """A program embedding the flows keeps its own Prefect setup; the CLI sets taskcodec's private one."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(HOME=str(tmp_path), TASKCODEC_HOME=str(tmp_path / "h"))
    show = "import os; print(os.environ.get('PREFECT_HOME'), os.environ.get('PREFECT_SERVER_ANALYTICS_ENABLED'))"
    embedded = subprocess.run([sys.executable, "-c", f"import taskcodec.flows, taskcodec.flows.runtime; {show}"],
                              env=env, capture_output=True, text=True, check=True)
    assert embedded.stdout.split() == ["None", "None"]

    def after(*argv: str) -> list[str]:
        code = f"from taskcodec.cli import app\ntry:\n    app({list(argv)!r})\nexcept SystemExit:\n    pass\n{show}"
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                              check=True).stdout.split()[-2:]

    assert after("info", "--help") == ["None", "None"]  # a command that runs no flow leaves Prefect alone
    assert after("archive", "--help") == [str((tmp_path / "h").resolve() / "prefect"), "false"]
