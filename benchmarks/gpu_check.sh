#!/usr/bin/env bash
# The prepared GPU check of issue 17 (item 7): one script, under 8 minutes (its step limits add up
# to 7.5), no network, no pip.
#
#   benchmarks/gpu_check.sh [OUT_DIR]          # default OUT_DIR: ./gpu-check
#
# Runs from the source tree (PYTHONPATH=src) with the Python found as $PYTHON (default: python)
# and needs only torch; steps that need a package that is missing are skipped and say so.
#   1. the tests that take a device (pytest marker "device"; BEYONDSGD_TEST_DEVICE=cuda):
#      every optimizer path (foreach, fused where offered, default) == the for-loop on CUDA,
#      float32 and bfloat16; DSGD's spectral norms and map on CUDA
#   2. the speed table, benchmarks/bench_update_rules.py --device cuda (torch's fused/foreach)
#   3. the DSGD step cost, benchmarks/dsgd_step.py --device cuda (Fashion-MNIST batches if installed, else --data random)
#   4. beyondsgd compare --device cuda on a small budget (digits, 1 seed, 3 epochs)
# Writes OUT_DIR/gpu_check.log (everything every step printed) and OUT_DIR/gpu_check.json
# (versions, device, per step: exit code and seconds; test counts; the tables as numbers).
# Exit code: 0 if every step that ran passed, 1 otherwise, 2 if the device is unusable.
#
# GPU_CHECK_DEVICE=cpu runs the same steps on the CPU with smaller sizes (to check the script
# itself on a machine without a GPU).
set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT_ARG=${1:-./gpu-check}
mkdir -p "$OUT_ARG" || { echo "gpu_check: cannot create output folder $OUT_ARG" >&2; exit 2; }
OUT=$(cd "$OUT_ARG" && pwd)
DEVICE=${GPU_CHECK_DEVICE:-cuda}
PY=${PYTHON:-python}
LOG=$OUT/gpu_check.log
JSON=$OUT/gpu_check.json
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
case "$DEVICE" in
  cuda) BENCH_ARGS=${GPU_CHECK_BENCH_ARGS:---width 2048 --layers 10 --blocks 4 --rounds 5}
        DSGD_ARGS=${GPU_CHECK_DSGD_ARGS:---steps 10 --rounds 10}
        COMPARE_ARGS=${GPU_CHECK_COMPARE_ARGS:---seeds 1 --epochs 3} ;;
  cpu)  BENCH_ARGS=${GPU_CHECK_BENCH_ARGS:---width 128 --layers 4 --blocks 2 --rounds 3}
        DSGD_ARGS=${GPU_CHECK_DSGD_ARGS:---steps 3 --rounds 3 --widths 64,64}
        COMPARE_ARGS=${GPU_CHECK_COMPARE_ARGS:---seeds 1 --epochs 1 --n-train 300} ;;
  *) echo "gpu_check: GPU_CHECK_DEVICE must be cuda or cpu, got '$DEVICE'" >&2; exit 2 ;;
esac

export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
export MPLBACKEND=Agg
export BEYONDSGD_TEST_DEVICE=$DEVICE
cd "$ROOT" || exit 2
: >"$LOG"
: >"$WORK/steps.tsv"
START=$(date +%s)

log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$LOG"; }

# step NAME LIMIT_S CMD...: runs CMD with a time limit; its output goes to the log and to $WORK/NAME.out.
step() {
  local name=$1 limit=$2 t0 rc
  shift 2
  log "== $name (limit ${limit}s): $*"
  t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" >"$WORK/$name.out" 2>&1
  rc=$?
  cat "$WORK/$name.out" >>"$LOG"
  printf '%s\t%s\t%s\n' "$name" "$rc" "$(($(date +%s) - t0))" >>"$WORK/steps.tsv"
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then log "-- $name: TIMED OUT after ${limit}s"; else log "-- $name: exit $rc"; fi
}

skip() {  # skip NAME REASON
  log "== $1: SKIPPED ($2)"
  printf '%s\tskipped\t0\t%s\n' "$1" "$2" >>"$WORK/steps.tsv"
}

have() { "$PY" -c "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('$1') else 1)" 2>/dev/null; }

log "gpu_check: device $DEVICE, output $OUT, source $ROOT"
step environment 30 "$PY" -c "
import json, platform, torch
info = {'python': platform.python_version(), 'torch': torch.__version__,
        'cuda_available': torch.cuda.is_available(), 'cuda': torch.version.cuda,
        'device_name': torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor()}
if torch.cuda.is_available():
    info['bf16_supported'] = torch.cuda.is_bf16_supported()
print(json.dumps(info))
"
if [ "$DEVICE" = cuda ] && ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>>"$LOG"; then
  log "gpu_check: GPU_CHECK_DEVICE=cuda but torch.cuda.is_available() is False; run with GPU_CHECK_DEVICE=cpu to check the script"
  ENV_RC=2
else
  ENV_RC=0
fi

if [ "$ENV_RC" -eq 0 ]; then
  # 1. Tests that take a device: files with the marker, minus those importing a missing package.
  if have pytest; then
    "$PY" - "$WORK/test_files.txt" >>"$LOG" 2>&1 <<'EOF'
import ast, importlib.util, pathlib, sys
keep = []
for path in sorted(pathlib.Path("tests").rglob("test_*.py")):
    text = path.read_text()
    if "mark.device" not in text:
        continue
    mods = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            mods.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            mods.add(node.module.split(".")[0])
    local = {p.stem for p in path.parent.glob("*.py")}
    missing = sorted(m for m in mods - local if importlib.util.find_spec(m) is None)
    if missing:
        print(f"skipping {path}: needs {', '.join(missing)}")
    else:
        keep.append(str(path))
pathlib.Path(sys.argv[1]).write_text("\n".join(keep))
print("device test files:", ", ".join(keep) or "none")
EOF
    mapfile -t TEST_FILES <"$WORK/test_files.txt"
    if [ "${#TEST_FILES[@]}" -gt 0 ] && [ -n "${TEST_FILES[0]}" ]; then
      step device_tests 150 "$PY" -m pytest -m device -q -p no:cacheprovider -o addopts=-ra \
        --junitxml="$WORK/junit.xml" "${TEST_FILES[@]}"
    else
      skip device_tests "no test file with the device marker can be imported"
    fi
  else
    skip device_tests "pytest is not installed"
  fi

  # 2. The speed table of the update rules against torch's fused/foreach paths.
  step bench_update_rules 120 "$PY" benchmarks/bench_update_rules.py --device "$DEVICE" --threads 1 $BENCH_ARGS

  # 3. DSGD's step cost (forward + backward included) against SGD, on real Fashion-MNIST minibatches
  #    where its files are installed, else on the benchmark's fixed random batch (which flatters DSGD:
  #    docs/dsgd.md, Performance); the log's "MLP ..." line says which.
  if "$PY" -c "from beyondsgd.data import load_dataset; load_dataset('fashion-mnist')" > /dev/null 2>&1; then
    DSGD_DATA=fashion-mnist
  else
    DSGD_DATA=random
  fi
  step dsgd_step 60 "$PY" benchmarks/dsgd_step.py --device "$DEVICE" --data "$DSGD_DATA" $DSGD_ARGS

  # 4. beyondsgd compare on a small budget (digits comes with scikit-learn, no download).
  if have sklearn; then
    step compare 90 "$PY" -m beyondsgd compare --device "$DEVICE" --dataset digits \
      --algorithms sgd,adam,m_sgd,h_adam,madam,hb,nag,dsgd $COMPARE_ARGS --out "$WORK/compare" --no-progress
  else
    skip compare "scikit-learn (the digits dataset) is not installed"
  fi
fi

# The JSON of figures, from what the steps printed (standard library only).
"$PY" - "$WORK" "$JSON" "$DEVICE" "$(($(date +%s) - START))" "${ENV_RC:-0}" >>"$LOG" 2>&1 <<'EOF'
import csv, json, pathlib, sys
import xml.etree.ElementTree as ET

work, out, device, elapsed = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
device_usable = sys.argv[5] == "0"
fig = {"device": device, "device_usable": device_usable, "elapsed_s": elapsed, "steps": {}}
for line in (work / "steps.tsv").read_text().splitlines():
    name, rc, secs, *why = line.split("\t")
    fig["steps"][name] = {"exit": rc if rc == "skipped" else int(rc), "seconds": int(secs), **({"why": why[0]} if why else {})}


def text(name):
    path = work / f"{name}.out"
    return path.read_text(errors="replace") if path.exists() else ""


try:
    fig["environment"] = json.loads(text("environment").strip().splitlines()[-1])
except (IndexError, ValueError):
    fig["environment"] = None

junit = work / "junit.xml"
if junit.exists():
    suites = ET.parse(junit).getroot()
    suite = suites if suites.tag == "testsuite" else suites[0]
    fig["device_tests"] = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    fig["device_tests"]["failed"] = [
        f"{c.get('classname')}::{c.get('name')}" for c in suite.iter("testcase") if c.find("failure") is not None
        or c.find("error") is not None
    ]


def table(name):
    """Rows of a benchmark table: the name (the words before the first number) and the numbers after it.

    Words that are not numbers (an interval's brackets, the "vs" column) are skipped; the header
    lines ("optimizer ...", "MLP ...", "median over ...", "... parameters in ...") are not rows.
    """
    rows = []
    for line in text(name).splitlines():
        words, head, nums = line.split(), [], []
        for word in words:
            try:
                nums.append(float(word.rstrip("x")))
            except ValueError:
                if not nums:
                    head.append(word)
        head = " ".join(head)
        skip = head.startswith(("optimizer", "MLP", "median over")) or "parameters in" in line
        if head and len(nums) >= 2 and not skip:
            rows.append({"name": head, "numbers": nums, "line": line.rstrip()})
    return rows


rows = table("bench_update_rules")
fig["update_rules"] = {
    "header": next((l for l in text("bench_update_rules").splitlines() if "parameters in" in l), None),
    "rows": [{"name": r["name"], "median_ms": r["numbers"][0], "numbers": r["numbers"], "line": r["line"]} for r in rows],
}
rows = table("dsgd_step")
fig["dsgd_step"] = {
    "header": next((l for l in text("dsgd_step").splitlines() if l.startswith("MLP")), None),
    "rows": [{"name": r["name"], "ms_per_step": r["numbers"][0], "x_sgd": r["numbers"][1]} for r in rows],
}
summary = work / "compare" / "summary.csv"
if summary.exists():
    with summary.open() as fh:
        fig["compare"] = [
            {
                "algorithm": r["algorithm"],
                "final_test_accuracy": float(r["final_test_accuracy_mean"]),
                "final_train_loss": float(r["final_train_loss_mean"]),
                "train_time_s": float(r["train_time_s_mean"]),
                "diverged": int(r["diverged"]),
            }
            for r in csv.DictReader(fh)
        ]
fig["run_on_gpu"] = device == "cuda" and device_usable
fig["passed"] = device_usable and all(s["exit"] in (0, "skipped") for s in fig["steps"].values())
pathlib.Path(out).write_text(json.dumps(fig, indent=2) + "\n")
print(f"wrote {out}: passed={fig['passed']}")
EOF
log "gpu_check: done in $(($(date +%s) - START))s; log $LOG, figures $JSON"
[ "${ENV_RC:-0}" -ne 0 ] && exit 2
"$PY" -c "import json, sys; sys.exit(0 if json.load(open('$JSON'))['passed'] else 1)"
