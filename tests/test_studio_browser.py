"""`compose studio` in a real browser: headless Chromium (Debian's) driven by Selenium loads the page from a
server started for real, presses Generate, sees the piano roll drawn and downloads a MIDI file that reads."""

import base64
import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pretty_midi
import pytest
import torch

from composer.model.checkpoint import save_checkpoint
from composer.model.config import ModelConfig
from composer.model.network import MelodyLSTM

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
DATA = {"meters": {"4/4": 90, "3/4": 40, "6/8": 20}, "keys": {"G": 60, "D": 50, "Am": 25}}


def _browser_missing() -> str | None:
    """Why the browser test cannot run here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.exists(path) or shutil.which(Path(path).name)):
            return f"{path} is missing (apt-get install chromium chromium-driver)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_studio(tmp_path: Path, checkpoint: Path | None = None) -> tuple[subprocess.Popen, str]:
    """`compose studio --no-browser` on a free port, waited for until /api/options answers."""
    port = _free_port()
    args = [sys.executable, "-m", "composer", "studio", "--no-browser", "--port", str(port)]
    if checkpoint is not None:
        args += ["--checkpoint", str(checkpoint)]
    log = open(tmp_path / "studio.log", "wb")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"compose studio exited {proc.returncode}: {(tmp_path / 'studio.log').read_text()}")
        try:
            with urllib.request.urlopen(url + "/api/options", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"compose studio did not answer in 60 s: {(tmp_path / 'studio.log').read_text()}")


def chromium(tmp_path: Path, width: int = 1280, height: int = 800):
    """A headless Debian Chromium under chromedriver, with a fresh profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
                 f"--window-size={width},{height}"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or CHROMEDRIVER), options=opts)


def generate_in_page(driver, url: str, timeout: float = 60) -> int:
    """Load the page, press Generate, wait for the roll's notes; returns how many it draws."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url + "/")
    wait = WebDriverWait(driver, timeout)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#program option"))  # options loaded
    assert driver.find_elements(By.CSS_SELECTOR, "#roll svg line.bar"), "no empty bars on load"
    assert not driver.find_elements(By.CSS_SELECTOR, "#roll rect.note")
    driver.find_element(By.ID, "generate").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#roll rect.note") or d.find_element(By.ID, "error").text)
    assert driver.find_element(By.ID, "error").text == ""
    return len(driver.find_elements(By.CSS_SELECTOR, "#roll rect.note"))


def download_link_bytes(driver) -> tuple[str, bytes]:
    """(file name, bytes) behind the page's download link, fetched inside the page from its blob URL."""
    name = driver.execute_script("return document.getElementById('download').download")
    data = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch(document.getElementById('download').href).then(r => r.arrayBuffer()).then(b => {
          let s = ''; for (const x of new Uint8Array(b)) s += String.fromCharCode(x); done(btoa(s));
        }).catch(e => done('ERROR ' + e));""")
    assert not data.startswith("ERROR"), data
    return name, base64.b64decode(data)


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    reason = _browser_missing()
    if reason:
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("studio")
    torch.manual_seed(0)
    model = MelodyLSTM(ModelConfig(embed_size=16, hidden_size=32, num_layers=2, dropout=0.3, copy_hints=False))
    save_checkpoint(tmp / "tiny.pt", model, extra={"data": DATA})
    proc, url = start_studio(tmp, tmp / "tiny.pt")
    driver = chromium(tmp)
    yield driver, url
    driver.quit()
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_generate_draws_the_roll_and_downloads_a_midi_file(studio):
    driver, url = studio
    notes = generate_in_page(driver, url)
    assert notes > 0
    name, data = download_link_bytes(driver)
    assert name.endswith(".mid") and data[:4] == b"MThd"
    pm = pretty_midi.PrettyMIDI(io.BytesIO(data))
    (inst,) = pm.instruments
    assert len(inst.notes) == notes  # the roll draws every note of the file it offers
    assert driver.execute_script("return document.getElementById('download').draggable") is True


def test_variations_are_listed_and_switch_the_roll(studio):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver, url = studio
    generate_in_page(driver, url)
    driver.execute_script("document.getElementById('num').value = 3; document.getElementById('seed').value = 7;")
    driver.find_element(By.ID, "generate").click()
    WebDriverWait(driver, 60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#variations li.ready")) == 3)
    bits = [float(li.find_element(By.CLASS_NAME, "bits").text) for li in driver.find_elements(By.CSS_SELECTOR, "#variations li")]
    assert bits == sorted(bits)  # ranked: the most likely first
    driver.find_elements(By.CSS_SELECTOR, "#variations li")[2].click()
    assert driver.find_element(By.CSS_SELECTOR, "#variations li.current").get_attribute("data-rank") == "3"
    name, _ = download_link_bytes(driver)
    assert "seed7" in name or "7" in driver.find_element(By.ID, "info").text


def test_keep_bars_regenerates_the_rest_and_bad_values_show_one_line(studio):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver, url = studio
    generate_in_page(driver, url)
    _, before = download_link_bytes(driver)
    driver.execute_script("document.getElementById('keep').value = 2;")
    driver.find_element(By.ID, "regenerate").click()
    WebDriverWait(driver, 60).until(lambda d: d.execute_script("return !document.body.classList.contains('busy')")
                                    and "kept" in d.find_element(By.ID, "info").text)
    _, after = download_link_bytes(driver)
    first, second = (pretty_midi.PrettyMIDI(io.BytesIO(b)) for b in (before, after))
    meter = first.time_signature_changes[0]
    bar = meter.numerator * 4 / meter.denominator * 60 / first.get_tempo_changes()[1][0]  # seconds
    kept = lambda pm: [(n.pitch, round(n.start, 3)) for n in pm.instruments[0].notes if n.start < 2 * bar - 1e-6]  # noqa: E731
    assert kept(first) == kept(second)
    assert driver.find_elements(By.CSS_SELECTOR, "#roll rect.kept")
    (end,) = driver.find_elements(By.CSS_SELECTOR, "#roll line.prime-end")  # a mark where the kept bars end
    roll = driver.find_element(By.ID, "roll")
    keys_w, bar_w = (float(roll.get_attribute(f"data-{k}")) for k in ("keys-w", "bar-w"))
    assert float(end.get_attribute("x1")) == pytest.approx(keys_w + 2 * bar_w)

    driver.execute_script("document.getElementById('pitch_range').value = 'banana';")
    driver.find_element(By.ID, "generate").click()
    WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "error").text)
    assert "banana" in driver.find_element(By.ID, "error").text and "\n" not in driver.find_element(By.ID, "error").text


def test_play_moves_the_playhead_and_an_uploaded_prime_is_continued(studio, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver, url = studio
    generate_in_page(driver, url)
    head_x = lambda: float(driver.find_element(By.ID, "playhead").get_attribute("x1"))  # noqa: E731
    start = head_x()
    driver.find_element(By.ID, "play").click()
    WebDriverWait(driver, 10).until(lambda d: head_x() > start + 5)
    assert driver.find_element(By.ID, "play").text.endswith("Stop")
    driver.find_element(By.ID, "play").click()
    assert driver.find_element(By.ID, "play").text.endswith("Play")

    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0))
    inst = pretty_midi.Instrument(0, name="Melody")
    inst.notes = [pretty_midi.Note(90, p, i * 0.5, i * 0.5 + 0.5) for i, p in enumerate([60, 62, 64, 65, 67, 65, 64, 62] * 2)]
    pm.instruments.append(inst)
    prime = tmp_path / "mine.mid"
    pm.write(str(prime))
    driver.execute_script("document.getElementById('bars').value = 4;")
    driver.find_element(By.ID, "upload").send_keys(str(prime))
    WebDriverWait(driver, 60).until(lambda d: "kept" in d.find_element(By.ID, "info").text or d.find_element(By.ID, "error").text)
    assert driver.find_element(By.ID, "error").text == ""
    assert "8 bars (bars 1–4 kept)" in driver.find_element(By.ID, "info").text
    assert len(driver.find_elements(By.CSS_SELECTOR, "#roll line.prime-end")) == 1
    _, data = download_link_bytes(driver)
    notes = pretty_midi.PrettyMIDI(io.BytesIO(data)).instruments[0].notes
    assert [n.pitch for n in notes[:16]] == [60, 62, 64, 65, 67, 65, 64, 62] * 2
