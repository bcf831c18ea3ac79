"""Big requests give their memory back (platform/memory.py)."""
import json

from zhongshu.platform import memory


def _rss_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])


def test_trimming_returns_freed_heap_pages_to_the_system():
    # Many small objects freed in a worker thread leave pages in that thread's heap.
    import threading

    def churn():
        junk = [json.dumps({"i": i, "s": "x" * 200}) for i in range(200_000)]
        del junk

    t = threading.Thread(target=churn)
    t.start()
    t.join()
    before = _rss_kb()
    assert memory.trim() is True
    assert _rss_kb() <= before


def test_a_big_bulk_request_is_followed_by_a_trim(owner, orders, monkeypatch):
    calls = []
    monkeypatch.setattr(memory, "trim", lambda: calls.append(1) or True)
    owner.ok(owner.post("/tables/orders/records?return=ids", json={"records": [{"customer_name": "x" * 150}] * 4000}), 201)
    assert calls == [1]
    owner.ok(owner.post("/tables/orders/records", json={"customer_name": "small"}), 201)
    assert calls == [1]
