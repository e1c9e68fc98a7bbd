"""Building midi_corpus/ from music21's bundled corpus: real tunes converted, written, read back."""

from __future__ import annotations

import csv
from fractions import Fraction

import pretty_midi
import pytest
from click.testing import CliRunner

from composer.cli import main
from composer.data.build import MANIFEST_COLUMNS, midi_text, select
from composer.data.sources import Tune, _declared_meters, convert_all, corpus_tasks
from composer.music.keys import Key
from composer.music.melody import Melody, Note
from composer.music.meter import TimeSignature
from composer.music.midi_io import read_report, write_midi

music21 = pytest.importorskip("music21")


@pytest.fixture(scope="module")
def tasks():
    return corpus_tasks()


def _abc(tasks, file_name: str, number: str):
    return next(t for t in tasks if t[0] == "abc" and t[1][0][1] == file_name and t[1][1] == number)


def _bach(tasks, stem: str):
    return next(t for t in tasks if t[0] == "bach" and t[1][1].endswith(f"/{stem}.mxl"))


@pytest.fixture(scope="module")
def cobbler(tasks):
    """O'Neill 732 'The Kerry Cobbler': a jig with a one-eighth pickup and two repeated strains."""
    task = _abc(tasks, "0732-0758_bs.abc", "732")
    (tune,) = convert_all([task])
    return task, tune


@pytest.fixture(scope="module")
def chorale(tasks):
    """BWV 1.6: a horn part comes before the soprano; a one-beat pickup; Quarter=76."""
    task = _bach(tasks, "bwv1.6")
    (tune,) = convert_all([task])
    return task, tune


def test_pickup_sits_at_the_end_of_bar_one(cobbler):
    _, tune = cobbler
    m = tune.melody
    assert tune.reason is None and m.time_signature == TimeSignature(6, 8) and m.key == Key.parse("D")
    bar = m.bar_steps
    assert m.notes[0].start == bar - 6  # the eighth-note pickup ends where bar 2 begins
    downbeat = next(n for n in m.notes if n.start >= bar)
    assert downbeat.start == bar
    assert sum(n.start % bar == 0 for n in m.notes) >= m.n_bars - 2  # jigs start bars on the beat


def test_repeats_are_expanded(cobbler):
    task, tune = cobbler
    score = music21.converter.parseData(task[1][2], format="abc")
    written_bars = len(score.parts[0].getElementsByClass("Measure"))
    assert not tune.info["expand_failed"]
    assert tune.melody.n_bars > written_bars  # two strains, each played twice
    assert tune.melody.n_bars == 33  # pickup bar + 4 x 8 bars


def test_triplets_are_exact_on_the_grid(tasks):
    (tune,) = convert_all([_abc(tasks, "0001-0050.abc", "2")])  # 'Fare You Well': (3 A2G2F2
    assert tune.info["off_grid"] == 0
    assert sum(n.duration == 4 for n in tune.melody.notes) >= 3  # an eighth-note triplet: 4 steps each


def test_partial_bar_signature_from_abc_is_not_a_meter_change(tasks):
    (tune,) = convert_all([_abc(tasks, "0001-0050.abc", "1")])  # music21 gives one bar 1/16
    assert tune.melody.time_signature == TimeSignature(2, 4)
    assert not tune.info["meter_changes"]
    assert _declared_meters("X:1\nM:C|\nK:D\nab [M:3/4] c|\n") == {"2/2", "3/4"}


def test_chorale_takes_the_soprano_part(chorale):
    task, tune = chorale
    m = tune.melody
    score = music21.converter.parse(task[1][1])
    soprano = score.parts["Soprano"].stripTies().flatten().notes
    assert [n.pitch for n in m.notes[:8]] == [n.pitch.midi for n in soprano[:8]]
    assert m.time_signature == TimeSignature(4, 4) and m.key == Key.parse("F") and m.tempo == 76.0
    assert m.notes[0].start == m.bar_steps - 12  # one-beat pickup
    first = Fraction(soprano[0].offset)
    assert all(n.start == int((Fraction(s.offset) - first) * 12) + 36 for n, s in zip(m.notes, soprano))


@pytest.mark.parametrize("which", ["cobbler", "chorale"])
def test_written_file_has_meta_events_at_tick_zero_and_reads_back(which, request, tmp_path):
    _, tune = request.getfixturevalue(which)
    m = tune.melody
    path = write_midi(m, tmp_path / "t.mid", track_name=midi_text(tune.title))
    pm = pretty_midi.PrettyMIDI(str(path))
    assert len(pm.instruments) == 1 and pm.instruments[0].name == midi_text(tune.title)
    (ts,) = pm.time_signature_changes
    assert (ts.numerator, ts.denominator, pm.time_to_tick(ts.time)) == (
        m.time_signature.numerator, m.time_signature.denominator, 0)
    (ks,) = pm.key_signature_changes
    assert (ks.key_number, pm.time_to_tick(ks.time)) == (m.key.index, 0)
    times, qpm = pm.get_tempo_changes()
    assert list(times) == [0.0] and qpm[0] == pytest.approx(m.tempo)
    first = pm.instruments[0].notes[0]
    assert pm.time_to_tick(first.start) == m.notes[0].start * pm.resolution // 12  # pickup not at 0
    assert read_report(path).melody == m


def test_titles_are_sanitised_for_midi():
    assert midi_text("Caoineadh U\u00ed N\u00e9ill\x00\n the  2nd") == "Caoineadh Ui Neill the 2nd"
    assert midi_text("\u266b\u266b") == "Melody"
    assert len(midi_text("x" * 500)) == 80


def _tune(source, order, ident, title, ok=True):
    m = Melody((Note(0, 12, 60),), TimeSignature(4, 4), Key(0), 1) if ok else None
    return Tune(source, order, ident, title, melody=m, reason=None if ok else "no notes")


def test_select_keeps_first_readable_transcription_and_unique_names():
    tunes = [
        _tune("oneills1850", (0, "a.abc", 0), "7", "Air", ok=False),
        _tune("oneills1850", (0, "b.abc", 0), "7", "Air"),
        _tune("oneills1850", (0, "b.abc", 1), "8", "Jig/Reel?"),
        _tune("oneills1850", (0, "c.abc", 0), "8", "Jig"),
        _tune("oneills1850", (0, "c.abc", 1), "9", "Gone", ok=False),
        _tune("bach", (1, "bwv1.6.mxl", 0), "bwv1.6", "BWV 1.6"),
    ]
    keep, skipped, dups = select(tunes)
    assert [n for n, _ in keep] == ["oneills_0007_Air.mid", "oneills_0008_Jig-Reel.mid", "bach_bwv1.6.mid"]
    assert keep[0][1].order == (0, "b.abc", 0)
    assert [t.ident for t in skipped] == ["9"] and len(dups) == 2


def test_cli_builds_a_small_corpus(tmp_path):
    out = tmp_path / "corpus"
    runner = CliRunner()
    res = runner.invoke(main, ["corpus", "build", "--out", str(out), "--limit", "2", "--jobs", "1"])
    assert res.exit_code == 0, res.output
    files = sorted(p.name for p in out.iterdir())
    assert files == ["README.md", "bach_bwv1.6.mid", "bach_bwv10.7.mid", "manifest.csv",
                     "oneills_0001_The-Enchanted-Valley.mid", "oneills_0002_Fare-You-Well.mid"]
    with open(out / "manifest.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == MANIFEST_COLUMNS and len(rows) == 5
    for row in rows[1:]:
        m = read_report(out / row[0]).melody
        assert (row[3], row[4], int(row[5]), int(row[6])) == (str(m.time_signature), m.key.name, len(m), m.n_bars)
    assert "4/4 files identical" in res.output
    again = runner.invoke(main, ["corpus", "build", "--out", str(out), "--limit", "1", "--jobs", "1"])
    assert again.exit_code == 1 and "use --force" in again.output and "Traceback" not in again.output
    forced = runner.invoke(main, ["corpus", "build", "--out", str(out), "--limit", "1", "--jobs", "1", "--force"])
    assert forced.exit_code == 0, forced.output
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md", "bach_bwv1.6.mid", "manifest.csv", "oneills_0001_The-Enchanted-Valley.mid"]


@pytest.mark.parametrize("body, played", [
    ("C D|E F:|G A|B c:|", "C D E F C D E F G A B C G A B C"),  # music21 alone: back to the start
    ("C D|[1 E F:|[2 E E||G A|[1 B c:|[2 B B|]", "C D E F C D E E G A B C G A B B"),
    ("|:C D|E F:|G A|B c|]", "C D E F C D E F G A B C"),
    ("C D|E F:|\n|:G A|B c|]", "C D E F C D E F G A B C"),  # start never closed: played once
])
def test_repeats_are_read_as_players_read_them(body, played):
    from composer.music.score import _close_repeats

    part = music21.converter.parseData(f"X:1\nT:t\nM:2/4\nL:1/4\nK:C\n{body}\n", format="abc").parts[0]
    _close_repeats(part)
    assert " ".join(n.name for n in part.expandRepeats().flatten().notes) == played


def test_a_chorale_in_two_formats_keeps_its_musicxml(tasks):
    copies = sorted((t[1] for t in tasks if t[0] == "bach" and "/bwv277." in t[1][1]), key=lambda a: a[0])
    assert [p.rsplit(".", 1)[1] for _, p in copies] == ["mxl", "krn"]  # select() keeps the first readable


def _build(out, *extra):
    return CliRunner().invoke(main, ["corpus", "build", "--out", str(out), "--limit", "1", "--jobs", "1", *extra])


@pytest.mark.parametrize("name, text", [
    ("README.md", "# My own notes\nDo not lose these.\n"),
    ("manifest.csv", "title,composer\nMy tune,me\n"),
])
def test_force_refuses_a_readme_or_manifest_the_builder_did_not_write(tmp_path, name, text):
    out = tmp_path / "mine"
    out.mkdir()
    (out / name).write_text(text)
    res = _build(out, "--force")
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1, res.output
    assert f"{out / name} was not written by `compose corpus build`" in res.output
    assert (out / name).read_text() == text and sorted(p.name for p in out.iterdir()) == [name]


def test_force_replaces_only_what_an_earlier_build_wrote(tmp_path):
    from composer.data.build import README_MARK

    out = tmp_path / "corpus"
    assert _build(out, "--limit", "2").exit_code == 0
    assert README_MARK in (out / "README.md").read_text()
    (out / "my_tune.mid").write_bytes(b"mine")  # the user's own files beside the build
    (out / "bach_mine.mid").write_bytes(b"mine too")  # named like the builder's, not in its manifest
    res = _build(out, "--force")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md", "bach_bwv1.6.mid", "bach_mine.mid", "manifest.csv", "my_tune.mid", "oneills_0001_The-Enchanted-Valley.mid"]
    assert (out / "my_tune.mid").read_bytes() == b"mine" and (out / "bach_mine.mid").read_bytes() == b"mine too"
    # A file in the way of a new one that no manifest of the builder lists is refused before anything moves.
    (out / "manifest.csv").write_text(",".join(MANIFEST_COLUMNS) + "\n")  # lists nothing
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    res = _build(out, "--force")
    assert res.exit_code == 1 and ".mid was not written by `compose corpus build` (its manifest.csv does not list it)" \
        in res.output.splitlines()[-1], res.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
