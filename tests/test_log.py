"""The one logger: third parties' routine logs silenced, sc2deploy's own lines kept."""

import logging
import os

from sc2deploy.log import (NATIVE_LOG_ENV, QUIET_LOGGERS, configure, logger,
                           native_stderr_without)


def test_native_noise_is_dropped_and_everything_else_passed_on(capfd):
    configure()
    with native_stderr_without("INFO: Created TensorFlow Lite"):
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        os.write(2, b"ERROR: a native error the user must see\n")
        logger.warning("warning: sc2deploy's own")
    err = capfd.readouterr().err
    assert "XNNPACK" not in err
    assert "ERROR: a native error the user must see\n" in err and "sc2deploy's own" in err


def test_third_parties_log_errors_only_unless_the_user_asked(monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")  # the user's own setting wins
    for name in NATIVE_LOG_ENV:
        if name != "TF_CPP_MIN_LOG_LEVEL":
            monkeypatch.setenv(name, "")  # recorded, so that the test leaves them as they were
            monkeypatch.delenv(name)
    configure()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"
    assert all(os.environ[k] == v for k, v in NATIVE_LOG_ENV.items()
               if k != "TF_CPP_MIN_LOG_LEVEL")
    assert all(logging.getLogger(n).level == logging.ERROR for n in QUIET_LOGGERS)
    assert logger.getEffectiveLevel() == logging.INFO
