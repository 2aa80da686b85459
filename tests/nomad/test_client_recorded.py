"""The Nomad client against recorded Nomad 1.6.5 responses (no Nomad needed).

``fixtures/`` holds response bodies recorded byte for byte from a real dev agent
by ``record_fixtures.py``, with their status and headers in ``index.json``. A
:class:`Recording` serves them through a real ``httpx.MockTransport``; python-nomad's
requests session reaches the same transport through a requests adapter, so both
libraries parse real bytes and nothing of ours is patched. Streams are served in
chunks cut at awkward byte positions.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from jupyter_remote.backends.nomad._client import (
    NomadClient,
    NomadError,
    NomadNotFoundError,
    NomadPermissionError,
    NomadUnavailableError,
)
from jupyter_remote.backends.nomad._config import NomadConfig
from jupyter_remote.backends.nomad._events import (
    FrameDecoder,
    FrameError,
    LogDecoder,
    placement_failures,
    task_state,
)
from jupyter_remote.exceptions import BackendError, ConfigError

FIXTURES = Path(__file__).parent / "fixtures"
INDEX: dict[str, dict[str, Any]] = json.loads((FIXTURES / "index.json").read_text())
TOKEN = "5ecret-t0ken-d0-n0t-leak"


def body(name: str) -> bytes:
    return (FIXTURES / INDEX[name]["file"]).read_bytes()


def doc(name: str) -> Any:
    return json.loads(body(name))


def _chunks(data: bytes, sizes: list[int]) -> Iterator[bytes]:
    pos, i = 0, 0
    while pos < len(data):
        size = sizes[i % len(sizes)]
        yield data[pos : pos + size]
        pos += size
        i += 1


class _TransportAdapter(BaseAdapter):
    """requests -> httpx transport, so python-nomad talks to the same recording."""

    def __init__(self, transport: httpx.BaseTransport) -> None:
        super().__init__()
        self.transport = transport

    def send(self, request: Any, stream: bool = False, **kwargs: Any) -> requests.Response:
        content = request.body or b""
        if isinstance(content, str):
            content = content.encode()
        sent = httpx.Request(request.method, request.url, headers=request.headers, content=content)
        got = self.transport.handle_request(sent)
        out = requests.Response()
        out.status_code = got.status_code
        out.headers = CaseInsensitiveDict(got.headers)
        out._content = got.read()
        out.url = request.url
        out.request = request
        out.encoding = requests.utils.get_encoding_from_headers(out.headers)
        return out

    def close(self) -> None:
        pass


class Recording:
    """A fake Nomad serving the named recordings, matched on method and path."""

    def __init__(self, *names: str, chunk_sizes: list[int] | None = None) -> None:
        self.names = names
        self.chunk_sizes = chunk_sizes
        self.requests: list[httpx.Request] = []
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        for name in self.names:
            entry = INDEX[name]
            if entry["method"] == request.method and entry["path"] == request.url.path:
                data = body(name)
                content: Any = data
                if self.chunk_sizes:
                    content = _chunks(data, self.chunk_sizes)
                return httpx.Response(entry["status"], headers=entry["headers"], content=content)
        return httpx.Response(599, text=f"no recording for {request.method} {request.url.path}")

    def client(self, **config: Any) -> NomadClient:
        session = requests.Session()
        session.mount("http://", _TransportAdapter(self.transport))
        cfg = NomadConfig(address="http://nomad.test:4646", **config)
        return NomadClient(cfg, transport=self.transport, session=session)

    def last(self) -> httpx.Request:
        return self.requests[-1]


@pytest.fixture
def replay() -> Iterator[Any]:
    clients: list[NomadClient] = []

    def make(*names: str, chunk_sizes: list[int] | None = None, **config: Any) -> Any:
        rec = Recording(*names, chunk_sizes=chunk_sizes)
        client = rec.client(**config)
        clients.append(client)
        return rec, client

    yield make
    for client in clients:
        client.close()


# -- request/response endpoints (python-nomad) ------------------------------------


def test_version_and_nodes_with_resources(replay: Any) -> None:
    rec, nomad = replay("agent_self", "nodes_resources")
    assert nomad.version() == "1.6.5"
    nodes = nomad.nodes_with_resources()
    assert rec.last().url.params["resources"].lower() == "true"
    assert nodes[0]["Status"] == "ready"
    assert nodes[0]["NodeResources"]["Devices"] is None  # a node without GPUs: null, not []
    assert nodes[0]["NodeResources"]["Memory"]["MemoryMB"] > 0


def test_register_sends_the_job_wrapped_with_namespace(replay: Any) -> None:
    rec, nomad = replay("job_register", namespace="default")
    result = nomad.register_job({"ID": "jr-rec-fail", "Type": "batch", "TaskGroups": []})
    assert result["EvalID"] == doc("job_register")["EvalID"]
    sent = json.loads(rec.last().content)
    assert sent == {
        "Job": {"Namespace": "default", "ID": "jr-rec-fail", "Type": "batch", "TaskGroups": []}
    }
    assert rec.last().url.params["namespace"] == "default"


def test_token_and_region_reach_both_libraries(replay: Any) -> None:
    rec, nomad = replay("job_read", "job_scale", token=TOKEN, region="eu")
    nomad.job("jr-rec-fail")  # python-nomad
    nomad.scale_job("jr-rec-scale", "workers", 2)  # httpx
    for request in rec.requests:
        assert request.headers["X-Nomad-Token"] == TOKEN
        assert request.url.params["region"] == "eu"


def test_job_read_list_summary_evaluations(replay: Any) -> None:
    rec, nomad = replay("job_read", "jobs_list", "job_summary_queued", "job_evaluations")
    assert nomad.job("jr-rec-fail")["TaskGroups"][0]["Name"] == "workers"
    assert "jr-rec-fail" in [j["ID"] for j in nomad.list_jobs("jr-rec")]
    assert rec.last().url.params["prefix"] == "jr-rec"
    assert nomad.job_summary("jr-rec-gpu")["Summary"]["workers"]["Queued"] == 1
    evals = nomad.job_evaluations("jr-rec-gpu")
    assert {e["Status"] for e in evals} == {"complete", "blocked"}


def test_stop_job_with_purge(replay: Any) -> None:
    rec, nomad = replay("job_deregister_purge")
    assert "EvalID" in nomad.stop_job("jr-rec-pending", purge=True)
    assert rec.last().method == "DELETE"
    assert rec.last().url.params["purge"].lower() == "true"


def test_scale_sends_count_and_group(replay: Any) -> None:
    rec, nomad = replay("job_scale")
    result = nomad.scale_job("jr-rec-scale", "workers", 2, message="recorded")
    assert result["EvalID"]
    assert json.loads(rec.last().content) == {
        "Count": 2,
        "Target": {"Group": "workers"},
        "Message": "recorded",
    }


def test_blocking_query_returns_the_index_header(replay: Any) -> None:
    rec, nomad = replay("job_allocations_blocking")
    result = nomad.blocking_get("/v1/job/jr-rec-fail/allocations", index=11, wait=5)
    assert result.index == int(INDEX["job_allocations_blocking"]["headers"]["X-Nomad-Index"])
    assert result.value[0]["JobID"] == "jr-rec-fail"
    assert rec.last().url.params["index"] == "11"
    assert rec.last().url.params["wait"] == "5s"


def test_signal_allocation(replay: Any) -> None:
    alloc_id = doc("alloc_signaled")["ID"]
    rec, nomad = replay("alloc_signal")
    nomad.signal_allocation(alloc_id, "SIGKILL", task="worker")
    assert json.loads(rec.last().content) == {"Signal": "SIGKILL", "Task": "worker"}


def test_variables_round_trip(replay: Any) -> None:
    rec, nomad = replay("variable_put", "variables_list", "variable_delete")
    put = nomad.put_variable("jr/secrets/rec", {"API_KEY": "not-a-secret"})
    assert put["Items"] == {"API_KEY": "not-a-secret"}
    assert json.loads(rec.last().content)["Path"] == "jr/secrets/rec"
    listed = nomad.list_variables("jr/")
    assert [v["Path"] for v in listed] == ["jr/secrets/rec"]
    assert "Items" not in listed[0]  # listing never carries values
    nomad.delete_variable("jr/secrets/rec")  # Nomad answers 204 with no body
    _, nomad = replay("variable_get")
    assert nomad.get_variable("jr/secrets/rec")["Items"]["API_KEY"] == "not-a-secret"
    _, nomad = replay("variable_not_found")
    assert nomad.get_variable("jr/secrets/rec") is None


# -- allocations, evaluations: what the backend reads from them --------------------


def test_failed_allocation_reports_exit_code(replay: Any) -> None:
    alloc = doc("alloc_failed")
    _, nomad = replay("alloc_failed")
    read = nomad.allocation(alloc["ID"])
    assert read["ClientStatus"] == "failed"
    state = task_state(read, "worker")
    assert state is not None
    assert (state.finished, state.failed, state.exit_code, state.signal) == (True, True, 3, None)
    assert state.describe() == "exited with status 3"
    assert state.message == "Exit Code: 3"
    assert task_state(read, "no-such-task") is None


def test_signalled_allocation_reports_the_signal(replay: Any) -> None:
    _, nomad = replay("alloc_signaled")
    state = task_state(nomad.allocation(doc("alloc_signaled")["ID"]), "worker")
    assert state is not None
    assert (state.exit_code, state.signal, state.oom_killed) == (137, 9, False)
    assert state.describe() == "killed by signal 9 (SIGKILL)"


def test_placement_failure_for_a_missing_gpu(replay: Any) -> None:
    ev = doc("eval_placement_failed")
    _, nomad = replay("eval_placement_failed", "eval_blocked")
    [failure] = placement_failures(nomad.evaluation(ev["ID"]))
    assert failure.group == "workers"
    assert failure.filtered == {"missing devices": 1}
    assert not failure.waiting_on_capacity
    assert "missing devices (1)" in failure.describe()
    blocked = nomad.evaluation(ev["BlockedEval"])
    assert blocked["Status"] == "blocked"
    assert placement_failures(blocked)[0].filtered == {"missing devices": 1}


def test_placement_failure_for_memory_and_driver() -> None:
    [memory] = placement_failures(doc("eval_memory_exhausted"))
    # Nomad reports "exhausted" even when no node could ever hold the request.
    assert memory.exhausted == {"memory": 1}
    assert memory.waiting_on_capacity
    assert "no free memory (1)" in memory.describe()
    if "eval_missing_driver" in INDEX:
        [driver] = placement_failures(doc("eval_missing_driver"))
        assert driver.filtered == {"missing drivers": 1}


# -- streams (httpx) ---------------------------------------------------------------


@pytest.mark.parametrize("sizes", [[1], [7], [3, 500, 1], [1 << 20]])
def test_event_stream_parses_events_and_skips_heartbeats(replay: Any, sizes: list[int]) -> None:
    raw = body("event_stream")
    assert raw.startswith(b"{}\n")  # Nomad greets with a heartbeat
    assert raw.split(b"\n").count(b"{}") >= 2  # ... and sends one every 10 s
    rec, nomad = replay("event_stream", chunk_sizes=sizes)
    events = list(nomad.events(["Job:jr-rec-fail", "Allocation:jr-rec-fail"], index=1))
    assert rec.last().url.params.get_list("topic") == ["Job:jr-rec-fail", "Allocation:jr-rec-fail"]
    assert rec.last().url.params["index"] == "1"
    assert rec.last().url.params["namespace"] == "default"
    kinds = [(e.topic, e.type) for e in events]
    assert kinds[0] == ("Job", "JobRegistered")
    assert ("Allocation", "PlanResult") in kinds
    allocs = [e for e in events if e.topic == "Allocation"]
    assert allocs[-1].object["ClientStatus"] == "failed"
    assert allocs[-1].object["JobID"] == "jr-rec-fail"
    assert all(e.index > 0 and e.namespace == "default" for e in events)
    assert [e.index for e in events] == sorted(e.index for e in events)


def test_event_stream_stops_when_asked(replay: Any) -> None:
    _, nomad = replay("event_stream", chunk_sizes=[64])
    stop = threading.Event()
    seen = []
    for event in nomad.events(stop=stop):
        seen.append(event)
        stop.set()
    assert len(seen) == 1


def test_log_stream_frames_decode_across_awkward_splits(replay: Any) -> None:
    raw = body("log_stream_stdout")
    frames = FrameDecoder().feed(raw)
    datas = [base64.b64decode(f["Data"]) for f in frames if f]
    assert {} in frames  # heartbeats between frames
    assert datas[0].endswith(b"\xe2\x9c")  # the recording splits "✓" across two frames
    expected = b"".join(datas).decode()
    assert expected == "héllo wörld\n✓ split\n"
    for size in range(1, len(raw) + 1):
        _, nomad = replay("log_stream_stdout", chunk_sizes=[size])
        alloc_id = doc("alloc_failed")["ID"]
        chunks = list(nomad.follow_logs(alloc_id, "worker", "stdout", until_finished=False))
        assert "".join(c.text for c in chunks) == expected, size
        assert b"".join(c.data for c in chunks).decode() == expected
        assert all("\ufffd" not in c.text for c in chunks)
        assert chunks[-1].offset == [f for f in frames if f][-1]["Offset"] == len(expected.encode())


def test_follow_logs_sends_the_query(replay: Any) -> None:
    rec, nomad = replay("log_stream_stdout")
    alloc_id = doc("alloc_failed")["ID"]
    list(nomad.follow_logs(alloc_id, "worker", "stdout", offset=5, until_finished=False))
    params = rec.last().url.params
    assert rec.last().url.path == f"/v1/client/fs/logs/{alloc_id}"
    assert dict(params) == {
        "task": "worker",
        "type": "stdout",
        "origin": "start",
        "offset": "5",
        "follow": "true",
        "namespace": "default",
    }
    assert rec.last().headers["Accept-Encoding"] == "identity"


def test_log_tail(replay: Any) -> None:
    alloc_id = doc("alloc_failed")["ID"]
    rec, nomad = replay("log_tail_stderr")
    assert nomad.log_tail(alloc_id, "worker") == "Traceback: boom ✗\n"
    assert rec.last().url.params["origin"] == "end"
    assert rec.last().url.params["plain"] == "true"
    # The last 3 bytes start inside "✗": the partial character is dropped, not garbled.
    assert body("log_tail_cut") == b"\x9c\x97\n"
    _, nomad = replay("log_tail_cut")
    assert nomad.log_tail(alloc_id, "worker", max_bytes=3) == "\n"


def test_logs_of_a_task_that_has_not_started(replay: Any) -> None:
    _, nomad = replay("log_not_started")
    alloc_id = INDEX["log_not_started"]["path"].rsplit("/", 1)[1]
    assert nomad.log_tail(alloc_id, "worker") == ""
    with pytest.raises(NomadNotFoundError, match="not started yet") as info:
        list(nomad.follow_logs(alloc_id, "worker"))
    assert info.value.status == 404


def test_frame_decoder_rejects_garbage() -> None:
    with pytest.raises(FrameError, match="malformed"):
        FrameDecoder().feed(b'{"Data":"aGk="}<html>')
    decoder = FrameDecoder()
    assert decoder.feed(b'{"Data":"aG') == []
    with pytest.raises(FrameError, match="ended inside"):
        decoder.close()
    with pytest.raises(FrameError, match="base64"):
        LogDecoder().chunk({"Data": "!!!"})


# -- errors ------------------------------------------------------------------------


def test_not_found_is_translated(replay: Any) -> None:
    _, nomad = replay("job_not_found", "alloc_not_found")
    with pytest.raises(NomadNotFoundError) as info:
        nomad.job("jr-rec-missing")
    assert (info.value.status, info.value.server_message) == (404, "job not found")
    assert "read job 'jr-rec-missing'" in str(info.value)
    assert isinstance(info.value, BackendError)
    assert isinstance(info.value.__cause__, Exception)
    with pytest.raises(NomadNotFoundError, match="alloc not found"):
        nomad.allocation("0" * 8 + "-0000-0000-0000-" + "0" * 12)


def test_permission_denied_without_a_token(replay: Any) -> None:
    _, nomad = replay("acl_permission_denied")
    with pytest.raises(NomadPermissionError, match="NOMAD_TOKEN is not set") as info:
        nomad.list_jobs()
    assert info.value.status == 403
    assert info.value.server_message == "Permission denied"


def test_unknown_token_never_leaks(replay: Any) -> None:
    _, nomad = replay("acl_token_not_found", token=TOKEN)
    # Nomad 1.6.5 answers an unknown token with the same "Permission denied".
    assert body("acl_token_not_found") == b"Permission denied"
    with pytest.raises(NomadPermissionError, match="unknown to this cluster") as info:
        nomad.list_jobs()
    assert TOKEN not in str(info.value)
    assert TOKEN not in repr(nomad) + repr(nomad.config)
    assert "token=***" in repr(nomad.config)


def test_permission_denied_with_a_token_names_the_policy() -> None:
    def deny(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, text=f"Permission denied for {TOKEN}")

    cfg = NomadConfig(address="http://nomad.test:4646", token=TOKEN, namespace="ml")
    nomad = NomadClient(cfg, transport=httpx.MockTransport(deny))
    with nomad, pytest.raises(NomadPermissionError, match="ACL policy") as info:
        nomad.scale_job("j", "g", 1)
    assert "namespace 'ml'" in str(info.value)
    assert TOKEN not in str(info.value) and TOKEN not in info.value.server_message


def test_unreachable_address_fails_fast_in_both_libraries() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with NomadClient(NomadConfig(address=f"http://127.0.0.1:{port}")) as nomad:
        for call in (
            nomad.version,
            lambda: nomad.scale_job("j", "g", 1),
            lambda: list(nomad.events(timeout=1)),
        ):
            start = time.monotonic()
            with pytest.raises(NomadUnavailableError, match="NOMAD_ADDR") as info:
                call()
            assert time.monotonic() - start < 2
            assert info.value.status is None
            assert "Connection refused" in str(info.value)


def test_non_json_answer_is_a_clear_error() -> None:
    def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>not nomad</html>")

    rec = Recording()
    rec.transport = httpx.MockTransport(html)
    with rec.client() as nomad:
        with pytest.raises(NomadError, match="malformed answer"):
            nomad.version()
        with pytest.raises(NomadError, match="malformed answer"):
            nomad.scale_job("j", "g", 1)


def test_tls_files_are_checked_up_front(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="NOMAD_CACERT"):
        NomadClient(NomadConfig(address="https://n:4646", cacert=str(tmp_path / "missing.pem")))
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ConfigError, match="NOMAD_CLIENT_CERT"):
        NomadClient(
            NomadConfig(address="https://n:4646", client_cert=str(bad), client_key=str(bad))
        )


def test_errors_pickle() -> None:
    import pickle

    err = NomadPermissionError("refused", 403, "Permission denied")
    back = pickle.loads(pickle.dumps(err))
    assert (type(back), str(back), back.status, back.server_message) == (
        NomadPermissionError,
        "refused",
        403,
        "Permission denied",
    )
