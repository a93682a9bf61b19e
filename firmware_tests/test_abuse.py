"""The fuzz test: a live sim module (JACK dummy driver, OSC, the virtual panel) takes thousands
of random and malformed OSC packets and HTTP requests; it stays alive, logs a bounded number
of lines and no traceback, plays gates afterwards (heard through JACK), and still exits on
SIGTERM with its settings saved, though a far-future bundle came last."""
import shutil

import pytest

from neurorack.bench.abuse import abuse


@pytest.mark.skipif(not shutil.which("jackd"), reason="jackd is installed by deploy/install-system-deps.sh")
def test_a_live_module_survives_floods_and_fuzz_and_plays_on():
    result = abuse(osc_flood_n=4000, osc_fuzz_n=3000, http_n=600, gates=3, seed=12, idle_s=0.5)
    assert result["alive_after_abuse"]
    assert result["tracebacks"] == 0, result["log_sample"]
    assert result["gates_after_abuse"] == {"sent": 3, "played": 3}
    # One line per kind per second at most (about a dozen kinds, over a few seconds), not one per message.
    assert result["lines_logged_during_abuse"] <= 120, result["log_sample"]
    assert result["sigterm"]["exit_code"] == 0 and result["sigterm"]["seconds"] < 15
    assert result["settings_saved_on_exit"]
    assert result["legit_panel_reply"] == {"204": 9}
    assert "reset" not in result["http_replies"]
    assert result["rss_kb"]["growth"] < 64 * 1024
