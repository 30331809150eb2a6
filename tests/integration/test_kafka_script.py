"""scripts/kafka.sh: starts a KRaft broker that answers, and stop leaves no process behind."""
import os
import subprocess

from confluent_kafka.admin import AdminClient

from conftest import KAFKA_PORT, ROOT

SCRIPT = str(ROOT / "scripts" / "kafka.sh")


def script(cmd, port, *extra):
    env = dict(os.environ, KAFKA_PORT=str(port))
    return subprocess.run([SCRIPT, cmd, *extra], env=env, capture_output=True, text=True, timeout=180)


def test_start_status_stop_leaves_no_process():
    port = KAFKA_PORT + 8  # beside the suite's broker, not on it (conftest.KAFKA_PORT)
    run_dir = ROOT / ".run" / f"kafka-{port}"
    started = script("start", port, "--fresh")
    try:
        assert started.returncode == 0, started.stderr
        pid = int((run_dir / "kafka.pid").read_text())
        assert os.path.exists(f"/proc/{pid}")
        assert script("status", port).returncode == 0
        metadata = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"}).list_topics(timeout=30)
        assert 1 in metadata.brokers
    finally:
        stopped = script("stop", port)
    assert stopped.returncode == 0, stopped.stderr
    assert not os.path.exists(f"/proc/{pid}"), "broker process still alive after stop"
    assert script("status", port).returncode != 0
    leftovers = subprocess.run(["pgrep", "-f", str(run_dir)], capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", f"stray processes: {leftovers.stdout}"
