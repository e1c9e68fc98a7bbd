"""`compose studio`'s server: the page's API gives the CLI's files, limits and one-line errors."""

import base64
import io
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pretty_midi
import pytest
import torch
from click.testing import CliRunner
from starlette.testclient import TestClient

from composer import Composer
from composer.cli import main
from composer.generate import request as rq
from composer.model.checkpoint import save_checkpoint
from composer.model.config import ModelConfig
from composer.model.network import MelodyLSTM
from composer.music.midi_io import read_melody
from composer.studio.app import MAX_PRIME_BYTES, STATIC, create_app

REAL = Path(__file__).parent / "fixtures" / "real"
DATA = {"meters": {"6/8": 120, "4/4": 90, "3/4": 40}, "keys": {"G": 60, "D": 50, "Em": 30}}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = MelodyLSTM(ModelConfig(embed_size=16, hidden_size=32, num_layers=2, dropout=0.3, copy_hints=False))
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, model, extra={"data": DATA})
    return path


@pytest.fixture(scope="module")
def composer(checkpoint) -> Composer:
    return Composer.load(checkpoint)


@pytest.fixture(scope="module")
def client(composer) -> TestClient:
    return TestClient(create_app(composer))


def b64(path: Path, data_url: bool = False) -> str:
    text = base64.b64encode(path.read_bytes()).decode()
    return f"data:audio/midi;base64,{text}" if data_url else text


def test_a_request_gives_the_midi_file_of_the_python_api(client, composer):
    body = {"bars": 6, "key": "Dm", "time_signature": "6/8", "seed": 42, "temperature": 1.3, "tempo": 96, "program": "flute"}
    r = client.post("/api/generate", json=body)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "audio/midi"
    assert r.content == composer.generate(**body)[0].to_midi_bytes()
    h = r.headers
    assert (h["x-key"], h["x-time-signature"], h["x-seed"], h["x-bars"], h["x-tempo"], h["x-rank"], h["x-num"]) == \
           ("Dm", "6/8", "42", "6", "96", "1", "1")
    assert float(h["x-bits-per-note"]) > 0
    assert h["content-disposition"] == 'attachment; filename="melody_Dm_6-8_6bars_seed42.mid"'
    assert "X-Bits-Per-Note" in h["access-control-expose-headers"]
    pm = pretty_midi.PrettyMIDI(io.BytesIO(r.content))
    assert [(t.numerator, t.denominator) for t in pm.time_signature_changes] == [(6, 8)]
    assert pm.instruments[0].program == 73 and pm.instruments[0].notes  # flute
    assert read_melody_bytes(r.content).n_bars == 6


def read_melody_bytes(data: bytes):
    """A response's melody, read back by the package's own reader."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.mid"
        path.write_bytes(data)
        return read_melody(path)


def test_rank_picks_one_of_the_same_ranked_batch(client, composer):
    body = {"bars": 4, "num": 3, "seed": 7}
    results = composer.generate(**body)
    second = client.post("/api/generate", json={**body, "rank": 2})
    assert second.status_code == 200 and second.headers["x-rank"] == "2" and second.headers["x-num"] == "3"
    assert second.content == results[1].to_midi_bytes()
    assert second.headers["content-disposition"].endswith('_seed7_02.mid"')
    assert client.post("/api/generate", json={**body, "rank": 2}).content == second.content
    assert client.post("/api/generate", json=body).content == results[0].to_midi_bytes()  # rank 1 by default


def test_without_a_seed_the_server_draws_one_and_says_which(client):
    r = client.post("/api/generate", json={"bars": 2})
    assert r.status_code == 200
    again = client.post("/api/generate", json={"bars": 2, "seed": int(r.headers["x-seed"])})
    assert again.content == r.content


@pytest.mark.parametrize("body, needle", [
    ({"bars": 4, "colour": "blue"}, "unknown key 'colour'"),
    ({"bars": 0}, "bars must be between 1 and 512"),
    ({"bars": rq.MAX_BARS + 1}, "bars must be between 1 and 512"),
    ({"temperature": "abc"}, "temperature must be a number"),
    ({"bars": 4.5}, "bars must be a whole number"),
    ({"vary": "yes"}, "vary must be true or false"),
    ({"key": "H#"}, "H#"),
    ({"time_signature": "7/7"}, "7/7"),
    ({"num": 3, "rank": 4}, "rank must be between 1 and num (3)"),
    ({"num": 2000}, "num must be between 1 and 1024"),
    ({"pitch_range": "G5-C4"}, "is empty"),
    ({"prime_bars": 2}, "prime_bars needs a prime"),
    ({"prime": "not base64!"}, "prime is not base64"),
    ({"prime": base64.b64encode(b"MThd garbage").decode()}, "prime: "),
    ({"prime": b64(REAL / "m21_test12.mid"), "prime_bars": 3}, "prime_bars 3 is more than the 2 bars of the prime: give at most 2"),
    ([1, 2], "must be a JSON object"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_a_bad_value_is_a_400_with_one_line(client, body, needle):
    r = client.post("/api/generate", json=body)
    assert r.status_code == 400 and r.headers["content-type"] == "application/json"
    error = r.json()["error"]
    assert list(r.json()) == ["error"] and needle in error and "\n" not in error and "Traceback" not in error
    assert "/tmp" not in error  # an upload's temporary path is not shown


def test_bad_json_and_huge_uploads_are_refused_in_one_line(client):
    r = client.post("/api/generate", content=b"{bars: 4")
    assert r.status_code == 400 and r.json()["error"].startswith("the body is not valid JSON")
    huge = base64.b64encode(b"\0" * (MAX_PRIME_BYTES + 1)).decode()
    r = client.post("/api/generate", json={"prime": huge})
    assert r.status_code == 413 and "2 MB" in r.json()["error"]
    just_over = base64.b64encode(b"\0" * (MAX_PRIME_BYTES + 1)).decode()[: MAX_PRIME_BYTES * 4 // 3 + 4]
    r = client.post("/api/generate", json={"prime": just_over})
    assert r.status_code in (400, 413) and "\n" not in r.json()["error"]


def test_a_prime_upload_is_continued_and_prime_bars_cuts_it(client, composer):
    prime = read_melody(REAL / "m21_test02.mid")  # 10 bars of 4/4
    r = client.post("/api/generate", json={"prime": b64(REAL / "m21_test02.mid", data_url=True), "bars": 2, "seed": 1})
    assert r.status_code == 200, r.text
    assert r.headers["x-bars"] == str(prime.n_bars + 2) and r.headers["x-time-signature"] == "4/4"
    assert r.headers["content-disposition"].startswith('attachment; filename="prime_continued_')
    cut = client.post("/api/generate", json={"prime": b64(REAL / "m21_test02.mid"), "prime_bars": 3, "bars": 2, "seed": 1})
    assert cut.status_code == 200 and cut.headers["x-bars"] == "5"
    kept = read_melody_bytes(cut.content).bars(0, 3)
    assert kept.notes == prime.bars(0, 3).notes  # bars 1-3 kept as they were
    api = composer.generate(prime=prime, prime_bars=3, bars=2, seed=1)[0]  # the upload is read into the same Melody
    assert read_melody_bytes(cut.content).notes == read_melody_bytes(api.to_midi_bytes()).notes
    # where the prime ends, for the piano roll's mark: the server's count, not the page's guess
    assert (r.headers["x-prime-bars"], cut.headers["x-prime-bars"]) == (str(prime.n_bars), "3")
    assert client.post("/api/generate", json={"bars": 2, "seed": 1}).headers["x-prime-bars"] == "0"
    assert "X-Prime-Bars" in r.headers["access-control-expose-headers"]


def test_an_uploaded_prime_track_is_chosen_by_name_or_number(client, tmp_path):
    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    for program, (name, low) in enumerate((("Bass", 43), ("Fiddle", 67))):
        inst = pretty_midi.Instrument(program, name=name)
        inst.notes += [pretty_midi.Note(80, low + i % 5, i * 0.5, (i + 1) * 0.5) for i in range(8)]
        pm.instruments.append(inst)
    pm.write(str(tmp_path / "duo.mid"))
    for track, low in (("FIDDLE", 67), (2, 67), (1, 43), (None, 67)):
        r = client.post("/api/generate", json={"prime": b64(tmp_path / "duo.mid"), "track": track, "bars": 1, "seed": 1})
        assert r.status_code == 200, r.text
        assert read_melody_bytes(r.content).notes[0].pitch == low and r.headers["x-prime-bars"] == "2"
    bad = client.post("/api/generate", json={"prime": b64(tmp_path / "duo.mid"), "track": "Viola"})
    assert bad.status_code == 400 and "no track named 'Viola'" in bad.json()["error"] and "Fiddle" in bad.json()["error"]
    for body, words in (({"track": 1}, "track needs a prime"), ({"prime": b64(tmp_path / "duo.mid"), "track": 0}, "track must be"),
                        ({"prime": b64(tmp_path / "duo.mid"), "track": [1]}, "track must be a number or a name")):
        r = client.post("/api/generate", json=body)
        assert r.status_code == 400 and words in r.json()["error"], r.text


@pytest.mark.parametrize("path", ["/../../etc/passwd", "/static/../app.py", "/static/app.py", "/static/%2e%2e%2fapp.py",
                                  "/static/..%2f..%2fpyproject.toml", "/static/", "/static/__init__.py", "/etc/passwd"])
def test_no_path_from_the_client_reaches_the_file_system(client, path):
    r = client.get(path)
    assert r.status_code == 404 and "root:" not in r.text


def test_the_page_and_its_files_are_served_by_name(client):
    names = sorted(p.name for p in STATIC.iterdir() if p.is_file()) if STATIC.is_dir() else []
    if "index.html" not in names:
        pytest.skip("the page is not in composer/studio/static yet")
    assert client.get("/").status_code == 200 and "html" in client.get("/").headers["content-type"]
    for name in names:
        assert client.get(f"/static/{name}").content == (STATIC / name).read_bytes()


def test_options_carry_the_requests_limits_and_defaults(client, composer):
    o = client.get("/api/options").json()
    lim = o["limits"]
    assert (lim["MAX_BARS"], lim["MAX_NUM"], lim["MAX_MELODY_BARS"], lim["MAX_PIECE_BARS"], lim["MAX_SEED"]) == \
           (rq.MAX_BARS, rq.MAX_NUM, rq.MAX_MELODY_BARS, rq.MAX_PIECE_BARS, rq.MAX_SEED)
    assert tuple(lim["TEMPO_RANGE"]) == rq.TEMPO_RANGE and lim["DEFAULT_BARS"] == rq.DEFAULT_BARS
    assert lim["MIN_TEMPERATURE"] == rq.MIN_TEMPERATURE and lim["MAX_PRIME_BYTES"] == MAX_PRIME_BYTES
    defaults = rq.GenerateRequest.__dataclass_fields__
    assert {k: v for k, v in o["defaults"].items() if k != "rank"} == {k: f.default for k, f in defaults.items()}
    assert set(o["keywords"]) == set(rq.GenerateRequest.keywords()) | {"rank"}
    assert len(o["instruments"]) == 128 and o["instruments"][73] == "Flute"
    assert len(o["keys"]) == 24 and {"C", "Am", "F#"} <= set(o["keys"]) and {"4/4", "6/8", "3/4"} <= set(o["meters"])
    assert o["model"] == {"name": "tiny.pt", "keys": [k.name for k in composer.keys],
                          "meters": [str(m) for m in composer.meters], "default_form": composer.default_form}


def test_twenty_concurrent_requests_are_all_answered(client):
    def post(i):
        return client.post("/api/generate", json={"bars": 4, "seed": i, "num": 2})

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(post, range(20)))
    assert [r.status_code for r in answers] == [200] * 20
    assert [r.headers["x-seed"] for r in answers] == [str(i) for i in range(20)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_compose_studio_serves_for_real(checkpoint):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "composer", "studio", "--no-browser", "--port", str(port), "-c", str(checkpoint)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base, deadline = f"http://127.0.0.1:{port}", time.time() + 60
        while True:
            try:
                options = json.loads(urllib.request.urlopen(f"{base}/api/options", timeout=5).read())
                break
            except OSError:
                assert proc.poll() is None and time.time() < deadline, proc.stderr.read() if proc.poll() is not None else "no answer"
                time.sleep(0.2)
        assert options["model"]["name"] == "tiny.pt"

        def post(i):
            req = urllib.request.Request(f"{base}/api/generate", json.dumps({"bars": 2, "seed": i}).encode(),
                                         {"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, r.headers["X-Seed"], r.read()[:4]

        with ThreadPoolExecutor(20) as pool:
            assert list(pool.map(post, range(20))) == [(200, str(i), b"MThd") for i in range(20)]
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/" in out and "warning" not in err


def test_studio_warns_off_loopback_and_refuses_a_taken_port(checkpoint, monkeypatch):
    import uvicorn

    runs = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: runs.append(kw))  # only avoids starting a server
    port = free_port()
    res = CliRunner().invoke(main, ["studio", "--host", "0.0.0.0", "--port", str(port), "--no-browser", "-c", str(checkpoint)])
    assert res.exit_code == 0, res.output
    assert "warning: --host 0.0.0.0 is not a loopback address" in res.stderr
    assert runs == [{"host": "0.0.0.0", "port": port, "log_level": "warning"}]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        res = CliRunner().invoke(main, ["studio", "--port", str(busy), "--no-browser", "-c", str(checkpoint)])
    assert res.exit_code == 1 and res.stderr.count("\n") == 1 and f"cannot listen on 127.0.0.1:{busy}" in res.stderr
    assert "warning" not in res.stderr and len(runs) == 1


def test_studio_help_and_compose_help_stay_light():
    res = CliRunner().invoke(main, ["studio", "--help"])
    assert res.exit_code == 0 and "--no-browser" in res.output and "--port" in res.output
    code = ("import sys; from composer.cli import main; "
            "assert not {m.split('.')[0] for m in sys.modules} & {'torch', 'starlette', 'uvicorn'}, 'heavy import'")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_prime_bars_on_the_command_line(tmp_path, checkpoint):
    res = CliRunner().invoke(main, ["generate", "-c", str(checkpoint), "--outdir", str(tmp_path), "--bars", "2", "--seed", "1",
                                    "--prime", str(REAL / "m21_test02.mid"), "--prime-bars", "3"])
    assert res.exit_code == 0, res.output
    (mid,) = tmp_path.iterdir()
    assert read_melody(mid).n_bars == 5 and mid.name.startswith("m21_test02_continued_")
    res = CliRunner().invoke(main, ["generate", "-c", str(checkpoint), "--prime-bars", "3"])
    assert res.exit_code == 2 and "--prime-bars needs a prime" in res.output
    assert "Keep only the first K bars of --prime" in CliRunner().invoke(main, ["generate", "--help"]).output
