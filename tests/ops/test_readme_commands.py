"""Every command line in the README's ```bash blocks runs, from a checkout-shaped folder, with small settings.

The README is parsed here; ``STEPS`` maps each README command line (comments dropped, continuation
lines joined, whitespace collapsed) to how the test runs it: verbatim, or with ``/data/...`` and
``/models/...`` replaced by inputs and tiny models made in the test, a short clip for the long
vendored ones, and ``--dry-run`` / ``--limit`` where the real run needs a cluster, a GPU or hours.
A README command with no entry fails the test, and so does an entry no README line matches: the
README and this file change together.

Commands run in order in one folder shaped like a fresh clone (links to the checkout's code and
``.venv``), each in a fresh ``bash`` with HOME in the test's folder, so what one writes (out/, tiny_models/,
train.yaml) the next reads, as for a user following the README.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKOUT = (".venv", "pipelines", "stages", "models", "training", "tests", "scripts", "benchmarks", "Makefile",
            "pyproject.toml", "constraints.txt", "README.md")
SMALL_DEMO = ("--runner sequential --limit 2 --set demo_pairs=1 --set demo_size=[64,48] --set extend.steps=1 "
              "--set extend.num_new_frames=9 --set run.progress=false --set tiny_models=tiny_models")
SENORITA_MODELS = {"/models/HunyuanVideo-FramePack": "tiny_models/framepack", "/models/dinov2-base": "tiny_models/dinov2"}


@dataclass(frozen=True)
class Step:
    run: str | None  # the shell line actually run ({data}, {clip}... filled in); None: not run, see `why`
    why: str = ""  # what differs from the README line, and why
    check: str = ""  # a regex the output must match


def readme_commands(text: str) -> list[str]:
    lines = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, re.MULTILINE | re.DOTALL):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            if line and not line.startswith("#"):
                lines.append(" ".join(line.split()))
    return lines


def _sub(line: str, mapping: dict[str, str]) -> str:
    for a, b in mapping.items():
        line = line.replace(a, b)
    return line


SENORITA = (".venv/bin/memcorpus build senorita-long --pairs /data/senorita/pairs.json --root /data/senorita "
            "--out /data/corpora/senorita_long --set extend.model=/models/HunyuanVideo-FramePack "
            "--set descriptors.model=/models/dinov2-base --set extend.device=cuda --set extend.gpus=1 "
            "--set descriptors.device=cuda --set descriptors.gpus=0.25")
MEMENTO = (".venv/bin/memcorpus build memento --footage /data/films --out /data/corpora/memento "
           "--set shots.backend=transnetv2 --set subtitles.backend=paddle "
           "--set subtitles.model_dir=/models/PP-OCRv5_server_det --set tracking.detector=yolo "
           "--set tracking.yolo_weights=/models/yolo11x.onnx --set captions.backend=vllm_ray "
           "--set captions.model=Qwen/Qwen3-VL-8B-Instruct")
MULTICAM = (".venv/bin/memcorpus build multicam --multicam /data/MultiCamVideo/train --roams /data/context_as_memory "
            "--out /data/corpora/multicam")
FOV = ".venv/bin/memcorpus fov /data/MultiCamVideo/train/f24_aperture5/scene1 --json"
SUBMIT = ("ray job submit --address http://127.0.0.1:8265 --working-dir . -- python pipelines/build_senorita_long.py "
          "--pairs /data/pairs.json --root /data --out /data/senorita_long "
          "--set extend.model=/models/HunyuanVideo-FramePack --set descriptors.model=/models/dinov2-base "
          "--set extend.device=cuda --set extend.gpus=1 --set descriptors.device=cuda --set descriptors.gpus=0.25")
PRINTF = ("printf 'dataset: out/senorita_long\\nbackbone: tiny_models/wan\\nout: runs/train\\nsteps: 100\\n"
          "num_workers: 2\\ncpus_per_worker: 0.5\\n' > train.yaml")
SHORT = {"tests/data/real/cuts_people_640x360.mp4": "{clip}", "tests/data/real/subtitles_ru_1280x720.mp4": "{subs}"}

STEPS: dict[str, Step] = {
    "make demo": Step(f"make -n demo | grep -x '.venv/bin/python pipelines/build_senorita_long.py' && "
                      f".venv/bin/python pipelines/build_senorita_long.py {SMALL_DEMO}",
                      "the target's own command (checked with make -n), one demo pair, 9 new frames, sequential",
                      r"senorita_long run"),
    "make test": Step("make -n test | grep -q 'pytest'", "only checked with make -n: make test runs this test"),
    ".venv/bin/memcorpus verify out/senorita_long": Step(".venv/bin/memcorpus verify out/senorita_long"),
    ".venv/bin/memcorpus build memento --footage tests/data/real --out out/memento_trial --set captions.enabled=false "
    "--limit 2 --dry-run": Step(".venv/bin/memcorpus build memento --footage tests/data/real --out out/memento_trial "
                                "--set captions.enabled=false --limit 2 --dry-run", check=r"inputs: \d+ \(--limit"),
    SENORITA: Step(_sub(SENORITA, {"/data/corpora": "{data}/corpora", "/data/senorita": "{data}/senorita",
                                   **SENORITA_MODELS}) + " --dry-run",
                   "a GPU run: demo pairs and tiny models, --dry-run", r"ExtendTarget .* 1 GPU each"),
    MEMENTO: Step(_sub(MEMENTO, {"/data/films": "{films}", "/data/corpora": "{data}/corpora",
                                 "/models/PP-OCRv5_server_det": "{paddle_dir}", "/models/yolo11x.onnx": "{yolo}",
                                 "Qwen/Qwen3-VL-8B-Instruct": "{qwen_dir}"}) + " --dry-run",
                  "a GPU cluster run (vLLM, PaddleOCR, YOLO): stand-in files, --dry-run",
                  r"CaptionWithVLLM +its own Ray Data processor"),
    ".venv/bin/memcorpus shots tests/data/real/cuts_people_640x360.mp4 --json":
        Step(".venv/bin/memcorpus shots {clip} --json", "the first 4 s of the clip", r'"cuts"'),
    ".venv/bin/memcorpus subtitles tests/data/real/subtitles_ru_1280x720.mp4 --json":
        Step(".venv/bin/memcorpus subtitles {subs} --json", "the first 4 s of the clip", r'"kept_fraction"'),
    ".venv/bin/memcorpus track tests/data/real/cuts_people_640x360.mp4 --json":
        Step(".venv/bin/memcorpus track {clip} --json --sample-fps 2", "the first 4 s, 2 detections/s", r'"tracks"'),
    ".venv/bin/memcorpus make-tiny-models tiny_models/ --only qwen3vl":
        Step(".venv/bin/memcorpus make-tiny-models tiny_models/ --only qwen3vl", check=r"qwen3vl: tiny_models/qwen3vl"),
    ".venv/bin/memcorpus caption tests/data/real/cuts_people_640x360.mp4 --backend transformers "
    "--model tiny_models/qwen3vl --json":
        Step(".venv/bin/memcorpus caption {clip} --backend transformers --model tiny_models/qwen3vl --json "
             "--story-chars 60 --caption-chars 40", "the first 4 s, short answers (a tiny random model)", r'"story"'),
    MULTICAM: Step(_sub(MULTICAM, {"/data/MultiCamVideo/train": "{mc}/multicam/train",
                                   "/data/context_as_memory": "{mc}/cam", "/data/corpora": "{data}/corpora"})
                   + " --dry-run", "one small generated scene and roam, --dry-run", r"inputs: 2"),
    FOV: Step(_sub(FOV, {"/data/MultiCamVideo/train": "{mc}/multicam/train"}), "a small generated scene", r'"topk"'),
    ".venv/bin/memcorpus make-tiny-models tiny_models/": Step(".venv/bin/memcorpus make-tiny-models tiny_models/",
                                                              check=r"wan: tiny_models/wan"),
    PRINTF: Step(PRINTF),
    ".venv/bin/memcorpus train --config train.yaml": Step(
        ".venv/bin/memcorpus train --config train.yaml --set steps=1 --set checkpoint_every=1 --set num_workers=1 "
        "--set size=[32,32] --set frames=5",
        "one step on one worker at 32x32 (tests/ops/test_train_cli.py trains longer and interrupts)",
        r"checkpoint: /.*runs/train/memory_dit/checkpoint"),
    ".venv/bin/memcorpus generate runs/train/memory_dit --dataset out/senorita_long --dino tiny_models/dinov2 "
    "--out gen/": Step(
        ".venv/bin/memcorpus generate runs/train/memory_dit --dataset out/senorita_long --dino tiny_models/dinov2 "
        "--out gen/ --steps 2", "2 sampling steps", r'"frames": \d+'),
    ".venv/bin/memcorpus evaluate gen/video.mp4 --dino tiny_models/dinov2 --clip tiny_models/clip --out eval/":
        Step(".venv/bin/memcorpus evaluate gen/video.mp4 --dino tiny_models/dinov2 --clip tiny_models/clip --out eval/",
             check=r"TINY RANDOM MODEL"),
    ".venv/bin/memcorpus train-check out/senorita_long --n 16 --json": Step(
        ".venv/bin/memcorpus train-check out/senorita_long --n 2 --json --size 32 32", "2 examples at 32x32",
        r'"examples": 2'),
    ".venv/bin/memcorpus report out/senorita_long": Step(".venv/bin/memcorpus report out/senorita_long",
                                                         check=r"index\.html"),
    "source .venv/bin/activate": Step("source .venv/bin/activate && command -v ray | grep -q .venv/bin/ray"),
    "export RAY_USAGE_STATS_ENABLED=0": Step("export RAY_USAGE_STATS_ENABLED=0"),
    "export RAY_AUTH_MODE=token": Step("export RAY_AUTH_MODE=token"),
    "(umask 077 && mkdir -p ~/.ray && ray get-auth-token --generate >/dev/null) && chmod 600 ~/.ray/auth_token":
        Step("source .venv/bin/activate && (umask 077 && mkdir -p ~/.ray && ray get-auth-token --generate >/dev/null) "
             "&& chmod 600 ~/.ray/auth_token", "HOME is the test's folder"),
    'export RAY_AUTH_TOKEN_PATH="$HOME/.ray/auth_token"': Step('export RAY_AUTH_TOKEN_PATH="$HOME/.ray/auth_token" '
                                                              '&& test -f "$RAY_AUTH_TOKEN_PATH"'),
    "ray start --head --node-ip-address=127.0.0.1 --dashboard-host=127.0.0.1": Step(
        None, "starts a cluster head: tests/spine/test_cluster.py runs ray start + ray job submit"),
    SUBMIT: Step(".venv/bin/python " + _sub(SUBMIT.split(" -- ", 1)[1].removeprefix("python "), {
        "/data/pairs.json": "{data}/senorita/pairs.json", "--root /data": "--root {data}/senorita",
        "/data/senorita_long": "{data}/corpora/submitted", **SENORITA_MODELS}) + " --dry-run",
        "the job's entrypoint with --dry-run (a cluster with GPUs runs it)", r"SegmentDescriptors"),
}


def test_every_readme_command_is_covered():
    commands = readme_commands((ROOT / "README.md").read_text())
    missing = [c for c in commands if c not in STEPS]
    stale = [k for k in STEPS if k not in commands]
    assert not missing, f"README commands with no entry in STEPS (add one): {missing}"
    assert not stale, f"STEPS entries no README line matches (README changed?): {stale}"


def _short_clip(src: Path, dst: Path, seconds: float = 4.0) -> str:
    from stages.video import encode_mp4, probe, read_frames

    fps = probe(src).fps
    dst.write_bytes(encode_mp4(read_frames(src, end=int(seconds * fps)), fps))
    return str(dst)


@pytest.fixture(scope="module")
def clone(tmp_path_factory, tiny_models) -> tuple[Path, dict[str, str]]:
    from pipelines.demo_multicam import write_demo as write_multicam
    from pipelines.demo_senorita import write_demo as write_pairs

    top = tmp_path_factory.mktemp("readme")
    repo = top / "memcorpus"
    repo.mkdir()
    for name in CHECKOUT:
        (repo / name).symlink_to(ROOT / name)
    (repo / "tiny_models").mkdir()
    for fam, path in tiny_models.items():  # the session's tiny models; make-tiny-models adds the rest
        (repo / "tiny_models" / fam).symlink_to(path)
    data = top / "data"
    write_pairs(data / "senorita", n_pairs=1, size=(64, 48))
    mc = write_multicam(top / "mc", scenes=1, size=32, frames=9, roam_frames=20, broken=False)
    for stand_in in ("paddle_det", "qwen3vl_8b"):  # folders a --dry-run checks for, never loads
        (top / stand_in).mkdir()
    (top / "yolo11x.onnx").write_bytes(b"")
    clips = top / "clips"
    clips.mkdir()
    real = ROOT / "tests" / "data" / "real"
    fill = {"data": str(data), "mc": str(mc), "films": str(real), "paddle_dir": str(top / "paddle_det"), "qwen_dir": str(top / "qwen3vl_8b"),
            "yolo": str(top / "yolo11x.onnx"), "clip": _short_clip(real / "cuts_people_640x360.mp4", clips / "a.mp4"),
            "subs": _short_clip(real / "subtitles_ru_1280x720.mp4", clips / "s.mp4"), "home": str(top / "home")}
    (top / "home").mkdir()
    return repo, fill


def test_readme_commands_run(clone):
    repo, fill = clone
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "VIRTUAL_ENV"))}
    env.update(HOME=fill["home"], HF_HUB_OFFLINE="1", YOLO_OFFLINE="1", RAY_USAGE_STATS_ENABLED="0")
    transcript = os.environ.get("MEMCORPUS_README_TRANSCRIPT")  # a file to get what each command printed
    for line in readme_commands((repo / "README.md").read_text()):
        step = STEPS[line]
        if step.run is None:
            continue
        cmd = step.run.format(**fill)
        t0 = time.perf_counter()
        p = subprocess.run(["bash", "-c", cmd], cwd=repo, env=env, capture_output=True, text=True, timeout=900,
                           check=False)  # generous: Ray Train's start alone took 5 min on a 2-core box at load 30
        out = p.stdout + p.stderr
        if transcript:
            with open(transcript, "a") as f:
                f.write(f"## README: {line}\nran: {cmd}\nexit {p.returncode} in {time.perf_counter() - t0:.1f} s"
                        f"{' (' + step.why + ')' if step.why else ''}\n{out[-1500:]}\n\n")
        assert p.returncode == 0, f"README: {line}\nran: {cmd}\n{out[-3000:]}"
        if step.check:
            assert re.search(step.check, out), f"README: {line}\nran: {cmd}\nno {step.check!r} in:\n{out[-3000:]}"
    token = Path(fill["home"]) / ".ray" / "auth_token"
    assert token.is_file() and stat.S_IMODE(token.stat().st_mode) == 0o600
    assert not (ROOT / "models" / "wan").exists()  # nothing was written into the models package
    record = json.loads(next((repo / "out" / "senorita_long" / "runs").glob("*.json")).read_text())
    assert record["counts"]["inputs"] >= 1
