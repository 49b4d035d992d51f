"""`sc2deploy serve` and `stream` refuse bad input on one line, before starting anything
(the commands running for real: tests/serving/test_shaped_link.py)."""

from sc2deploy.cli import main


def test_serve_refuses_bad_options_before_starting_ray(demo_bundle, tmp_path, capsys):
    assert main(["serve", str(demo_bundle.path), "--replicas", "0", "--token-file",
                 str(tmp_path / "t")]) == 2
    assert "invalid serve options --replicas" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()  # no token made for a server that never ran


def test_serve_refuses_a_missing_bundle(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "nope")]) == 2
    assert "bundle not found" in capsys.readouterr().err


def test_stream_needs_a_token_and_an_http_url(demo_bundle, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SC2DEPLOY_TOKEN", raising=False)
    out = tmp_path / "s.json"
    assert main(["stream", str(demo_bundle.path), "--server", "http://127.0.0.1:9",
                 "-o", str(out)]) == 2
    assert "no token" in capsys.readouterr().err
    monkeypatch.setenv("SC2DEPLOY_TOKEN", "a-token-of-the-test-123")
    assert main(["stream", str(demo_bundle.path), "--server", "127.0.0.1:9", "-o",
                 str(out)]) == 2
    assert "expected http://HOST:PORT" in capsys.readouterr().err and not out.exists()
