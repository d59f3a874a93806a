"""Plan sets: one upload (several files, or a list in one file) is one group, shown as a table of
every signal (old -> new) and approved or rejected together, each plan still on the store's rules."""

from __future__ import annotations

import json
import re

from deploy.store import PlanStore
from tests.deploy.conftest import CAPS, make_plan, make_profile


def upload(client, files: dict[str, str], evidence: str = "") -> object:  # type: ignore[no-untyped-def]
    return client.post("/plans/new", data={"csrf": client.csrf, "note": "am set", "evidence": evidence},
                       files=[("plan_file", (name, text, "application/json")) for name, text in files.items()],
                       follow_redirects=False)


def two_files() -> dict[str, str]:
    a = [make_plan("A0", greens=(44, 36)).to_dict(), make_plan("A1", greens=(46, 34), offset=12).to_dict()]
    return {"corridor-a.json": json.dumps(a), "b1.json": make_plan("B1", greens=(48, 32)).to_json()}


def test_an_upload_of_several_files_is_one_set_with_a_table(client_for, store: PlanStore) -> None:  # type: ignore[no-untyped-def]
    ann = client_for("ann")
    r = upload(ann, two_files())
    assert r.status_code == 303 and r.headers["location"].startswith("/sets/")
    set_id = r.headers["location"].rsplit("/", 1)[1]
    page = client_for("vic").get(f"/sets/{set_id}").text
    table = page[page.index('id="set-table"'):page.index("</table>", page.index('id="set-table"'))]
    assert [m for m in re.findall(r'data-signal="([^"]+)"', table)] == ["A0", "A1", "B1"]
    assert "49 / 41" in table and "<td>12</td>" in table and "b1.json, corridor-a.json" in page
    assert 'id="approve-set"' not in page  # a viewer sees no buttons
    entry = [e for e in store.audit() if e.action == "plan.set"][-1]
    assert (entry.actor, entry.channel, entry.detail["signals"]) == ("ann", "web", ["A0", "A1", "B1"])
    assert set_id in client_for("vic").get("/plans").text
    a0 = store.get(entry.detail["plans"][0])
    assert f'href="/sets/{set_id}"' in client_for("vic").get(f"/plans/{a0.hash}").text


def test_a_set_is_approved_together_on_the_rules_of_each_plan(client_for, store: PlanStore) -> None:  # type: ignore[no-untyped-def]
    for sid in ("A0", "A1"):
        store.register_device(sid, "127.0.0.1", 9, make_profile(sid), CAPS)
    bob = client_for("bob")
    set_id = upload(bob, two_files(), "| webster | 118.4 |").headers["location"].rsplit("/", 1)[1]
    hashes = [e for e in store.audit() if e.action == "plan.set"][-1].detail["plans"]
    page = bob.get(f"/sets/{set_id}").text
    assert 'id="approve-set"' in page
    r = bob.post(f"/sets/{set_id}/approve", data={"csrf": bob.csrf, "plans": ",".join(hashes)})
    assert r.status_code == 200 and {store.get(h).state for h in hashes} == {"proposed"}  # no self-approval
    assert len([e for e in store.audit() if e.action == "approve" and e.outcome == "refused"]) == 3
    cat = client_for("cat")
    r = cat.post(f"/sets/{set_id}/approve", data={"csrf": cat.csrf, "plans": ",".join(hashes[:2])})
    assert r.status_code == 409 and {store.get(h).state for h in hashes} == {"proposed"}
    assert any("not the set's members" in e.detail.get("reason", "") for e in store.audit() if e.action == "web.refused")
    ann = client_for("ann")
    assert ann.post(f"/sets/{set_id}/approve", data={"csrf": ann.csrf, "plans": ",".join(hashes)}).status_code == 403
    r = cat.post(f"/sets/{set_id}/approve", data={"csrf": cat.csrf, "plans": ",".join(hashes), "comment": "ok"})
    outcomes = r.text[r.text.index('id="set-outcomes"'):]
    assert r.status_code == 200 and outcomes.count('class="ok"') + outcomes.count('class="error"') == 3
    approved = [h for h in hashes if store.get(h).state == "approved"]
    assert approved == hashes and outcomes.count('class="ok"') == 3  # each plan approved by the store
    assert [e.detail for e in store.audit(hashes[0]) if e.action == "approve.comment"] == [{"comment": "ok"}]
    assert all(e.channel == "web" for e in store.audit() if e.action == "approve")


def test_a_set_is_rejected_together(client_for, store: PlanStore) -> None:  # type: ignore[no-untyped-def]
    set_id = upload(client_for("ann"), two_files()).headers["location"].rsplit("/", 1)[1]
    hashes = [e for e in store.audit() if e.action == "plan.set"][-1].detail["plans"]
    cat = client_for("cat")
    r = cat.post(f"/sets/{set_id}/reject", data={"csrf": cat.csrf, "plans": ",".join(hashes), "comment": "not now"})
    assert r.status_code == 200 and {store.get(h).state for h in hashes} == {"rejected"}


def test_two_plans_for_one_signal_in_an_upload_propose_nothing(client_for, store: PlanStore) -> None:  # type: ignore[no-untyped-def]
    files = {"x.json": make_plan("B1").to_json(), "y.json": make_plan("B1", greens=(50, 30)).to_json()}
    r = upload(client_for("ann"), files)
    assert r.status_code == 400 and "more than one plan for signal(s) B1" in r.text
    assert store.plans() == []
    assert client_for("vic").get("/sets/0123456789abcdef").status_code == 404
    assert client_for("vic").get("/sets/..%2f..%2fetc").status_code == 404
