"""Record real Nomad responses into ``tests/nomad/fixtures/`` (run by hand, not by pytest).

    .venv/bin/python tests/nomad/record_fixtures.py

Starts dev agents (one plain, one with ACLs), performs real operations and
saves each response body byte for byte, with its status and headers in
``fixtures/index.json``. ``test_client_recorded.py`` replays them through the
client with ``httpx.MockTransport``, so CI without Nomad still checks the parsing.
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from agent import DevAgent, start_dev_agent

FIXTURES = Path(__file__).parent / "fixtures"
STDOUT_FOLLOW = [
    ("task", "worker"),
    ("type", "stdout"),
    ("follow", "true"),
    ("origin", "start"),
    ("offset", "0"),
]
FAIL_JOB = "jr-rec-fail"
# stdout: non-ASCII text, then "✓" (e2 9c 93) split across two frames by a pause;
# stderr: a traceback-like line; exit status 3.
FAIL_SCRIPT = (
    "printf 'h\\303\\251llo w\\303\\266rld\\n'; printf '\\342\\234'; sleep 1.5; "
    "printf '\\223 split\\n'; printf 'Traceback: boom \\342\\234\\227\\n' >&2; exit 3"
)


def batch_job(job_id: str, command: str, args: list[str], **resources: Any) -> dict[str, Any]:
    return {
        "ID": job_id,
        "Name": job_id,
        "Type": "batch",
        "Datacenters": ["*"],
        "TaskGroups": [
            {
                "Name": "workers",
                "Count": 1,
                "RestartPolicy": {"Attempts": 0, "Mode": "fail"},
                "ReschedulePolicy": {"Attempts": 0, "Unlimited": False},
                "Tasks": [
                    {
                        "Name": "worker",
                        "Driver": resources.pop("driver", "raw_exec"),
                        "Config": {"command": command, "args": args},
                        "Resources": {"CPU": 50, "MemoryMB": 32, **resources},
                    }
                ],
            }
        ],
    }


class Recorder:
    def __init__(self, agent: DevAgent) -> None:
        self.http = httpx.Client(
            base_url=agent.address, headers={"Accept-Encoding": "identity"}, timeout=30
        )
        self.index: dict[str, dict[str, Any]] = {}

    def _note(self, name: str, resp: httpx.Response, body: bytes, suffix: str) -> None:
        ctype = resp.headers.get("Content-Type", "")
        if not suffix:
            suffix = ".json" if "json" in ctype else ".txt"
        (FIXTURES / f"{name}{suffix}").write_bytes(body)
        headers = {
            k: resp.headers[k] for k in ("Content-Type", "X-Nomad-Index") if k in resp.headers
        }
        self.index[name] = {
            "method": resp.request.method,
            "path": resp.request.url.path,
            "query": resp.request.url.query.decode(),
            "status": resp.status_code,
            "headers": headers,
            "file": f"{name}{suffix}",
        }

    def save(self, name: str, method: str, path: str, expect: int = 200, **kw: Any) -> Any:
        resp = self.http.request(method, path, **kw)
        if resp.status_code != expect:
            raise RuntimeError(f"{method} {path}: {resp.status_code} {resp.text}")
        self._note(name, resp, resp.content, "")
        return resp.json() if "json" in resp.headers.get("Content-Type", "") else resp.text

    def stream(
        self,
        name: str,
        path: str,
        params: list[tuple[str, str]],
        done: Callable[[], bool],
        *,
        min_seconds: float,
        max_seconds: float = 60,
        token: str | None = None,
    ) -> bytes:
        """Capture a streamed response until ``done()`` and ``min_seconds`` have passed."""
        start = time.monotonic()
        body = b""
        headers = {"X-Nomad-Token": token} if token else {}
        with self.http.stream("GET", path, params=params, headers=headers) as resp:
            for chunk in resp.iter_raw():  # heartbeats wake this up regularly
                body += chunk
                elapsed = time.monotonic() - start
                if elapsed > max_seconds or (elapsed >= min_seconds and done()):
                    break
            self._note(name, resp, body, ".bin")
        return body

    def wait(self, what: str, check: Callable[[], Any], timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.2)
        raise RuntimeError(f"timed out waiting for {what}")

    def allocs(self, job_id: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.http.get(f"/v1/job/{job_id}/allocations").json()
        return result

    def terminal(self, job_id: str) -> bool:
        allocs = self.allocs(job_id)
        return bool(allocs) and allocs[0]["ClientStatus"] in ("complete", "failed", "lost")


def record(agent: DevAgent, acl_agent: DevAgent) -> None:
    rec = Recorder(agent)
    rec.save("agent_self", "GET", "/v1/agent/self")
    rec.save("nodes_resources", "GET", "/v1/nodes", params={"resources": "true"})

    # The event stream while a job is registered, placed, runs and fails.
    topics = [("topic", f"Job:{FAIL_JOB}"), ("topic", f"Allocation:{FAIL_JOB}")]
    topics += [("topic", f"Evaluation:{FAIL_JOB}"), ("index", "1")]
    events = threading.Thread(
        target=rec.stream,
        args=("event_stream", "/v1/event/stream", topics, lambda: rec.terminal(FAIL_JOB)),
        kwargs={"min_seconds": 9.5},  # until the periodic heartbeat (every 10 s)
    )
    events.start()
    time.sleep(0.5)
    job = batch_job(FAIL_JOB, "/bin/sh", ["-c", FAIL_SCRIPT])
    reg = rec.save("job_register", "POST", "/v1/jobs", json={"Job": job})
    rec.save(
        "job_allocations_blocking",
        "GET",
        f"/v1/job/{FAIL_JOB}/allocations",
        params={"index": str(reg["JobModifyIndex"]), "wait": "5s"},
    )
    alloc_id = rec.wait("an allocation", lambda: rec.allocs(FAIL_JOB))[0]["ID"]

    def started() -> bool:
        resp = rec.http.get(
            f"/v1/client/fs/logs/{alloc_id}",
            params={"task": "worker", "type": "stdout", "plain": "true"},
        )
        return resp.status_code == 200

    rec.wait("the task to start", started)
    rec.stream(
        "log_stream_stdout",
        f"/v1/client/fs/logs/{alloc_id}",
        [*STDOUT_FOLLOW],
        lambda: rec.terminal(FAIL_JOB),
        min_seconds=3.0,  # the task's output plus a few heartbeats after it
    )
    events.join()
    rec.save("alloc_failed", "GET", f"/v1/allocation/{alloc_id}")
    logs = f"/v1/client/fs/logs/{alloc_id}"
    tail = [("task", "worker"), ("type", "stderr"), ("origin", "end"), ("plain", "true")]
    rec.save("log_tail_stderr", "GET", logs, params=[*tail, ("offset", "4096")])
    rec.save("log_tail_cut", "GET", logs, params=[*tail, ("offset", "3")])
    rec.save("job_read", "GET", f"/v1/job/{FAIL_JOB}")
    rec.save("jobs_list", "GET", "/v1/jobs", params={"prefix": "jr-rec"})
    rec.save("job_not_found", "GET", "/v1/job/jr-rec-missing", expect=404)
    rec.save(
        "alloc_not_found", "GET", f"/v1/allocation/{'0' * 8}-0000-0000-0000-{'0' * 12}", expect=404
    )

    # Logs of a task that has not started: a prestart task holds it back.
    pending = batch_job("jr-rec-pending", "/bin/true", [])
    pending["TaskGroups"][0]["Tasks"].insert(
        0,
        {
            "Name": "setup",
            "Driver": "raw_exec",
            "Lifecycle": {"Hook": "prestart", "Sidecar": False},
            "Config": {"command": "/bin/sleep", "args": ["5"]},
            "Resources": {"CPU": 50, "MemoryMB": 32},
        },
    )
    rec.http.post("/v1/jobs", json={"Job": pending}).raise_for_status()
    pending_alloc = rec.wait("an allocation", lambda: rec.allocs("jr-rec-pending"))[0]["ID"]
    time.sleep(1)
    rec.save(
        "log_not_started",
        "GET",
        f"/v1/client/fs/logs/{pending_alloc}",
        params={
            "task": "worker",
            "type": "stderr",
            "origin": "end",
            "offset": "100",
            "plain": "true",
        },
        expect=404,
    )
    rec.save("job_deregister_purge", "DELETE", "/v1/job/jr-rec-pending", params={"purge": "true"})

    # A task killed by a signal.
    rec.http.post("/v1/jobs", json={"Job": batch_job("jr-rec-sig", "/bin/sleep", ["300"])})
    sig_alloc = rec.wait(
        "a running allocation",
        lambda: [a for a in rec.allocs("jr-rec-sig") if a["ClientStatus"] == "running"],
    )[0]["ID"]
    rec.save(
        "alloc_signal",
        "POST",
        f"/v1/client/allocation/{sig_alloc}/signal",
        json={"Signal": "SIGKILL", "Task": "worker"},
    )
    rec.wait("the signalled task to end", lambda: rec.terminal("jr-rec-sig"))
    rec.save("alloc_signaled", "GET", f"/v1/allocation/{sig_alloc}")

    # Scaling a group.
    rec.http.post("/v1/jobs", json={"Job": batch_job("jr-rec-scale", "/bin/sleep", ["300"])})
    rec.save(
        "job_scale",
        "POST",
        "/v1/job/jr-rec-scale/scale",
        json={"Count": 2, "Target": {"Group": "workers"}, "Message": "recorded"},
    )

    # Placement failures: a GPU this node lacks, more memory than it has, a missing driver.
    gpu = batch_job(
        "jr-rec-gpu",
        "/bin/true",
        [],
        Devices=[
            {
                "Name": "nvidia/gpu",
                "Count": 1,
                "Constraints": [{"LTarget": "${device.model}", "RTarget": "H100", "Operand": "="}],
            }
        ],
    )
    reg = rec.save("job_register_gpu", "POST", "/v1/jobs", json={"Job": gpu})
    ev = rec.wait("the evaluation", lambda: _eval_done(rec, reg["EvalID"]))
    rec.save("eval_placement_failed", "GET", f"/v1/evaluation/{reg['EvalID']}")
    rec.save("eval_blocked", "GET", f"/v1/evaluation/{ev['BlockedEval']}")
    rec.save("job_summary_queued", "GET", "/v1/job/jr-rec-gpu/summary")
    rec.save("job_evaluations", "GET", "/v1/job/jr-rec-gpu/evaluations")
    big = batch_job("jr-rec-mem", "/bin/true", [], MemoryMB=50_000_000)
    reg = rec.http.post("/v1/jobs", json={"Job": big}).json()
    rec.wait("the evaluation", lambda: _eval_done(rec, reg["EvalID"]))
    rec.save("eval_memory_exhausted", "GET", f"/v1/evaluation/{reg['EvalID']}")
    drivers = rec.http.get("/v1/nodes").json()[0]["Drivers"]
    if not drivers.get("docker", {}).get("Healthy"):
        docker = batch_job("jr-rec-docker", "/bin/true", [], driver="docker")
        reg = rec.http.post("/v1/jobs", json={"Job": docker}).json()
        rec.wait("the evaluation", lambda: _eval_done(rec, reg["EvalID"]))
        rec.save("eval_missing_driver", "GET", f"/v1/evaluation/{reg['EvalID']}")

    # Variables.
    var = {"Namespace": "default", "Path": "jr/secrets/rec", "Items": {"API_KEY": "not-a-secret"}}
    rec.save("variable_put", "PUT", "/v1/var/jr/secrets/rec", json=var)
    rec.save("variable_get", "GET", "/v1/var/jr/secrets/rec")
    rec.save("variables_list", "GET", "/v1/vars", params={"prefix": "jr/"})
    rec.save("variable_delete", "DELETE", "/v1/var/jr/secrets/rec", expect=204)
    rec.save("variable_not_found", "GET", "/v1/var/jr/secrets/rec", expect=404)

    # ACLs: no token, and a token the cluster does not know.
    acl = Recorder(acl_agent)
    acl.save("acl_permission_denied", "GET", "/v1/jobs", expect=403)
    acl.save(
        "acl_token_not_found",
        "GET",
        "/v1/jobs",
        expect=403,
        headers={"X-Nomad-Token": "00000000-1111-2222-3333-444444444444"},
    )
    rec.index.update(acl.index)
    acl.http.close()

    for job_id in ("jr-rec-sig", "jr-rec-scale", "jr-rec-gpu", "jr-rec-mem", "jr-rec-docker"):
        rec.http.delete(f"/v1/job/{job_id}", params={"purge": "true"})
    (FIXTURES / "index.json").write_text(json.dumps(rec.index, indent=2, sort_keys=True) + "\n")
    rec.http.close()


def _eval_done(rec: Recorder, eval_id: str) -> dict[str, Any] | None:
    ev: dict[str, Any] = rec.http.get(f"/v1/evaluation/{eval_id}").json()
    return ev if ev.get("Status") == "complete" else None


def main() -> None:
    FIXTURES.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="jr-nomad-rec-") as tmp:
        agent = start_dev_agent(Path(tmp) / "plain")
        try:
            acl_agent = start_dev_agent(Path(tmp) / "acl", acl=True)
            try:
                record(agent, acl_agent)
            finally:
                acl_agent.stop()
        finally:
            agent.stop()
    print(f"recorded {len(list(FIXTURES.iterdir())) - 1} responses into {FIXTURES}")


if __name__ == "__main__":
    main()
