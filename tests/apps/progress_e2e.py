"""Progress and interruption through the dakd binary, on a pseudo-terminal and in a log.

  progress_e2e.py DAKD WORK_DIR

A tiny study (2-D phantoms, a teacher of 2 short epochs, an evaluation) and then train,
predict and eval run under a pseudo-terminal 100 columns wide. The terminal is emulated
(\\r returns to column 0, ESC[K erases to the end of the line): every log line ([info],
[warn], [error]) and every stage line must start at column 0 of its line, never behind bar
text; the bar is seen, never wider than the terminal. Ctrl-C typed into the terminal during
a training: exit 130, the command with --resume printed, and that command then finishes.
Without a terminal: not one \\r, and with DAKD_PROGRESS_SECONDS=0 a progress line inside the
first epoch, before its [info] line. --quiet: no bar and no [info]. Exit 77 (skipped) when
no pseudo-terminal can be opened.
"""
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import fcntl
import time

DAKD, WORK = sys.argv[1], sys.argv[2]
COLS = 100
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def on_pty(args, env=None, ctrl_c_when=None):
    """Run dakd ARGS on a pseudo-terminal; (exit code, output as text). ctrl_c_when: a
    function that says when to type Ctrl-C (once)."""
    pid, fd = pty.fork()
    if pid == 0:
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 30, COLS, 0, 0))
        os.execve(DAKD, [DAKD] + args, {**os.environ, **(env or {})})
    out, sent = b"", False
    while True:
        if ctrl_c_when and not sent and ctrl_c_when():
            os.write(fd, b"\x03")
            sent = True
        try:
            import select
            r, _, _ = select.select([fd], [], [], 0.05)
            if not r:
                continue
            d = os.read(fd, 65536)
        except OSError:
            break
        if not d:
            break
        out += d
    _, st = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(st), out.decode("utf-8", "replace")


def screen_lines(text):
    """The lines a terminal shows: \\r moves to column 0, ESC[K erases to the end."""
    lines, buf, pos, i = [], [], 0, 0
    while i < len(text):
        c = text[i]
        if text.startswith("\x1b[K", i):
            del buf[pos:]
            i += 3
            continue
        if c == "\r":
            pos = 0
        elif c == "\n":
            lines.append("".join(buf))
            buf, pos = [], 0
        else:
            if pos < len(buf):
                buf[pos] = c
            else:
                buf.append(c)
            pos += 1
        i += 1
    if buf:
        lines.append("".join(buf))
    return lines


STAGE_LINE = re.compile(r"\[\d+/\d+\] \S+: (running|done|up to date)")


def check_screen(name, text, want_bar=True):
    lines = screen_lines(text)
    for ln in lines:
        for tag in ("[info]", "[warn]", "[error]"):
            k = ln.find(tag)
            check(k <= 0, f"{name}: a log line behind other text: {ln!r}")
        m = STAGE_LINE.search(ln)
        check(not m or m.start() == 0, f"{name}: a stage line behind other text: {ln!r}")
    bars = re.findall(r"\r([^\r\n\x1b]*)\x1b\[K", text)
    if want_bar:
        check(any("ETA" in b and "[" in b for b in bars), f"{name}: no progress bar drawn")
    for b in bars:
        check(len(b) <= COLS - 1, f"{name}: a bar wider than the terminal: {b!r}")
    return lines


def no_tty(args, env=None):
    p = subprocess.run([DAKD] + args, stdin=subprocess.DEVNULL, capture_output=True,
                       env={**os.environ, **(env or {})})
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def main():
    try:
        m, s = pty.openpty()
        os.close(m), os.close(s)
    except OSError as e:
        print(f"SKIP progress on a terminal: no pseudo-terminal ({e})")
        return 77
    subprocess.run(["rm", "-rf", WORK], check=True)
    os.makedirs(WORK)
    run = f"{WORK}/run"
    study = f"{WORK}/study.ini"
    with open(study, "w") as f:
        f.write(f"""[study]
name = progress
run_dir = {run}
seed = 42
threads = 1
stages = phantoms,teacher,eval_target
[phantoms]
dims = 2
size = 32,32
seed = 7
source_train = 4
source_val = 0
source_test = 2
target_train = 2
target_val = 0
target_test = 2
[data]
batch_size = 4
[model]
teacher_base = 4
teacher_levels = 2
student_base = 2
student_levels = 2
[train]
epochs = 2
steps_per_epoch = 30
lr = 0.01
validate_every = 0
[stage.teacher]
mode = teacher
[stage.eval_target]
kind = eval
models = teacher
domain = target
split = test
use_mask = false
""")
    # the study: stage k of n, the training's bar nested in it, then prediction's
    rc, text = on_pty(["run", study])
    check(rc == 0, f"run on a terminal: exit {rc}\n{text[-2000:]}")
    check_screen("run", text)
    check("run stage 2/3 teacher > train epoch" in text, "run: no stage > train bar")
    check("> predict" in text, "run: the eval stage's prediction shows no progress")

    cfg, cases = f"{run}/teacher/config.ini", f"{run}/phantoms/cases.csv"
    model = f"{run}/teacher/model.safetensors"
    # predict with windows smaller than the image: cases and window batches move
    rc, text = on_pty(["predict", "--model", model, "--cases", cases, "--where", "split=test",
                       "--out", f"{WORK}/pred", "--patch", "16,16", "--batch", "1"])
    check(rc == 0, f"predict on a terminal: exit {rc}\n{text[-2000:]}")
    check_screen("predict", text)
    check(re.search(r"predict \S+ > windows", text) is not None, "predict: no window progress")
    rc, text = on_pty(["eval", "--pred", f"{WORK}/pred", "--cases", cases, "--where",
                       "split=test", "--out", f"{WORK}/eval"])
    check(rc == 0, f"eval on a terminal: exit {rc}\n{text[-2000:]}")
    check_screen("eval", text)

    # Ctrl-C typed during a training: the checkpoint, 130, the command that continues
    long = ["--set", "train.steps_per_epoch=150", "--set", "train.checkpoint_every=1"]
    steps = f"{WORK}/t_int/steps.jsonl"

    def enough_steps():
        try:
            return sum(1 for _ in open(steps)) >= 10
        except OSError:
            return False
    rc, text = on_pty(["train", cfg, "--set", f"output.run_dir={WORK}/t_int"] + long,
                      ctrl_c_when=enough_steps)
    check(rc == 130, f"train interrupted by Ctrl-C: exit {rc} (want 130)\n{text[-2000:]}")
    lines = check_screen("train ^C", text)
    check(any("interrupted by SIGINT (Ctrl-C)" in ln for ln in lines), "train ^C: no message")
    k = [i for i, ln in enumerate(lines) if ln.endswith("To continue, run:")]
    check(bool(k) and lines[k[0] + 1].strip().endswith("--resume"),
          "train ^C: no command with --resume")
    if k:
        cmd = lines[k[0] + 1].strip()
        p = subprocess.run(cmd, shell=True, capture_output=True, text=True)
        check(p.returncode == 0, f"the printed command failed: {cmd}\n{p.stderr[-2000:]}")
        check("resuming" in p.stderr or "resum" in p.stderr.lower(),
              "the printed command did not resume")
        check(os.path.exists(f"{WORK}/t_int/model.safetensors"), "resumed run left no model")

    # no terminal: no \r; DAKD_PROGRESS_SECONDS=0 gives a line within the first epoch
    rc, out, err = no_tty(["train", cfg, "--set", f"output.run_dir={WORK}/t_log"],
                          {"DAKD_PROGRESS_SECONDS": "0"})
    check(rc == 0, f"train into a log: exit {rc}\n{err[-2000:]}")
    check("\r" not in err and "\x1b" not in err, "train into a log: a \\r or escape in stderr")
    el = err.splitlines()
    first_info = next((i for i, ln in enumerate(el) if ln.startswith("[info] epoch 1/2")), -1)
    within = [ln for ln in el[:first_info] if re.match(r"train epoch 1/2: \d+/60 \(", ln)]
    check(first_info > 0 and within, "train into a log: no progress line inside epoch 1")
    rc, out, err = no_tty(["train", cfg, "--set", f"output.run_dir={WORK}/t_log30"])
    check(rc == 0 and "\r" not in err, "train into a log (30 s): exit or \\r")
    check(re.search(r"^train epoch 2/2: 60/60 \(100%\).* in \d", err, re.M) is not None,
          "train into a log: no final progress line")
    rc, out, err = no_tty(["predict", "--model", model, "--cases", cases, "--where",
                           "split=test", "--out", f"{WORK}/pred2"])
    check(rc == 0 and "\r" not in err, "predict into a log: exit or \\r")
    check(re.search(r"^predict \S+: \d+/\d+ \(", err, re.M) is not None,
          "predict into a log: no line at a case's end")
    rc, out, err = no_tty(["train", cfg], {"DAKD_PROGRESS_SECONDS": "soon"})
    check(rc == 1 and "DAKD_PROGRESS_SECONDS" in err, "a bad DAKD_PROGRESS_SECONDS is not refused")

    # --quiet: neither bar nor [info]
    rc, text = on_pty(["train", cfg, "--quiet", "--set", f"output.run_dir={WORK}/t_q"])
    check(rc == 0, f"train --quiet: exit {rc}")
    check("[info]" not in text and "ETA" not in text and "\r\x1b[K" not in text,
          "train --quiet: progress or [info] shown")
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


sys.exit(main())
