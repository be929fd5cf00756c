"""Two rule changes at once (two planners adding a category each): the second waits for the
first and builds on it, so neither category is lost. Real commits on separate connections;
the rows are removed afterwards."""

from __future__ import annotations

import threading

from sqlalchemy import text
from sqlalchemy.orm import Session

from geoservice.ranking import vocabularies
from geoservice.rules import now
from tests.issues.test_concurrency import waiting_for_a_lock


def test_two_categories_added_at_once_are_both_kept(app, engine):
    def add(session: Session, name: str) -> None:
        vocabularies.set_category(
            session, None, app.config, {"name": name, "deadline_hours": 24, "note": "并发"}
        )

    outcome: dict = {}
    try:
        with Session(engine) as first:
            add(first, "并发甲")

            def second() -> None:
                with Session(engine) as other:
                    try:
                        add(other, "并发乙")
                        other.commit()
                        outcome["ok"] = True
                    except Exception as exc:  # reported below
                        outcome["error"] = exc

            thread = threading.Thread(target=second)
            thread.start()
            assert waiting_for_a_lock(engine)  # the second change waits for the first
            first.commit()
            thread.join(10)
        assert not thread.is_alive() and outcome.get("ok"), outcome
        with Session(engine) as check:
            vocab = vocabularies.issue_settings(check, app.config, now())
            assert {"并发甲", "并发乙"} <= set(vocab.categories)
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM rule_settings WHERE note = '并发'"))
