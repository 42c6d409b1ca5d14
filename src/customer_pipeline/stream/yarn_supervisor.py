"""Runs the Spark job on YARN in cluster mode and answers for its application.

In cluster mode the driver runs in the YARN ApplicationMaster on some NodeManager, and
spark-submit on the gateway only watches it: stopping spark-submit leaves the application
running. customer-stream.service therefore runs this supervisor, which

1. before submitting, kills the applications an earlier start left behind (same name and
   user, not yet final: e.g. after the service was SIGKILLed) and waits until YARN reports
   them final, so two jobs never share the checkpoint;
2. runs spark-submit (the arguments after `--`, with spark.yarn.submit.waitAppCompletion=true)
   as a child, passes its output through to journald and writes the application id it
   reports to the state file (`yarn logs -applicationId $(cat FILE)` shows the driver's log);
3. on SIGTERM/SIGINT kills the application through the ResourceManager's REST API, waits
   (bounded) until it is final, stops spark-submit and exits 0;
4. when the application ends by itself exits 0 if it FINISHED with SUCCEEDED, otherwise 1
   with one line naming the application, its final state and YARN's diagnostics (systemd's
   Restart=on-failure restarts the service);
5. exits 2 on a wrong setting (EXIT_BAD_SETTINGS: the unit does not restart it) and 1 when
   the ResourceManager cannot be reached at start (it may come back).

Stdlib only: it runs from customer_pipeline.zip (PYTHONPATH) with the gateway's python3.
YARN's simple authentication only: requests carry ?user.name=USER.

    python3 -m customer_pipeline.stream.yarn_supervisor --resourcemanager http://rm:8088 \\
        --app-name customer-stream --user maria_dev --state-file /var/lib/customer-stream/yarn-application-id \\
        -- spark-submit --master yarn --deploy-mode cluster ...
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from types import FrameType
from typing import Any, Dict, List, Optional, Sequence, TextIO

from customer_pipeline.journal import log_to_journal
from customer_pipeline.settings import EXIT_BAD_SETTINGS

LOG = logging.getLogger("customer_pipeline.stream.yarn_supervisor")
EXIT_FAILED = 1
ACTIVE_STATES = ("NEW", "NEW_SAVING", "SUBMITTED", "ACCEPTED", "RUNNING")
FINAL_STATES = ("FINISHED", "FAILED", "KILLED")
WAIT_APP_COMPLETION = "spark.yarn.submit.waitAppCompletion"
_SUBMITTED = re.compile(r"Submitted application (application_[0-9]+_[0-9]+)")
# spark-submit logs this every spark.yarn.report.interval (1 s): only a change is passed on.
_REPORT = re.compile(r"Application report for application_[0-9]+_[0-9]+ \(state: [A-Z_]+\)")
_RM_ADDRESS = re.compile(r"https?://[^/\s:]+(:[0-9]+)?/?")
# Diagnostics are multi-line Java traces at worst: the log line keeps their start.
MAX_DIAGNOSTICS = 400


class SupervisorError(RuntimeError):
    """Ends the supervisor with one log line and `exit_code`."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ResourceManagerError(RuntimeError):
    """A request to the ResourceManager failed: not reachable, or an HTTP error."""


@dataclass(frozen=True)
class Application:
    """What the supervisor reads of a YARN application report."""

    id: str
    name: str
    user: str
    state: str
    final_status: str
    diagnostics: str

    @classmethod
    def from_json(cls, app: Dict[str, Any]) -> "Application":
        return cls(
            id=str(app.get("id", "")),
            name=str(app.get("name", "")),
            user=str(app.get("user", "")),
            state=str(app.get("state", "")),
            final_status=str(app.get("finalStatus", "")),
            diagnostics=str(app.get("diagnostics") or ""),
        )

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def succeeded(self) -> bool:
        return self.state == "FINISHED" and self.final_status == "SUCCEEDED"

    def outcome(self) -> str:
        """`FAILED (final status FAILED): diagnostics` on one line."""
        text = f"{self.state} (final status {self.final_status or 'unknown'})"
        diagnostics = " ".join(self.diagnostics.split())
        if len(diagnostics) > MAX_DIAGNOSTICS:
            diagnostics = diagnostics[:MAX_DIAGNOSTICS] + "..."
        return f"{text}: {diagnostics}" if diagnostics else text


class ResourceManager:
    """The few calls of the ResourceManager REST API (/ws/v1/cluster) the supervisor needs."""

    def __init__(self, address: str, user: str, timeout: float = 10.0) -> None:
        self.address = address.rstrip("/")
        self.user = user
        self.timeout = timeout

    def _url(self, path: str, query: Optional[Dict[str, str]] = None) -> str:
        parameters = dict(query or {})
        if self.user:
            parameters["user.name"] = self.user  # simple authentication
        return f"{self.address}/ws/v1/cluster/{path}?{urllib.parse.urlencode(parameters)}"

    def _request(self, method: str, url: str, body: Optional[Dict[str, str]] = None) -> Any:
        label = f"{method} {urllib.parse.urlsplit(url).path}"
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                text = response.read().decode("utf-8")
        except urllib.error.HTTPError as error:
            detail = " ".join(error.read().decode("utf-8", "replace").split())[:200]
            raise ResourceManagerError(f"{label}: HTTP {error.code} {error.reason} {detail}".rstrip()) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise ResourceManagerError(f"{label}: {reason}") from None
        try:
            return json.loads(text) if text.strip() else {}
        except ValueError:
            raise ResourceManagerError(f"{label}: not a JSON answer: {text[:100]!r}") from None

    def active_applications(self, name: str) -> List[Application]:
        """The applications called `name` of the user that are not final yet."""
        url = self._url("apps", {"states": ",".join(ACTIVE_STATES), "user": self.user})
        answer = self._request("GET", url)
        apps = (answer.get("apps") or {}).get("app") or [] if isinstance(answer, dict) else []
        found = [Application.from_json(app) for app in apps if isinstance(app, dict)]
        return [app for app in found if app.name == name and app.user == self.user and not app.final]

    def application(self, app_id: str) -> Application:
        answer = self._request("GET", self._url(f"apps/{app_id}"))
        return Application.from_json(answer.get("app") or {} if isinstance(answer, dict) else {})

    def kill(self, app_id: str) -> None:
        self._request("PUT", self._url(f"apps/{app_id}/state"), {"state": "KILLED"})


class Supervisor:
    """One run of the service: clean up, submit, watch, stop."""

    def __init__(
        self,
        rm: ResourceManager,
        app_name: str,
        command: Sequence[str],
        state_file: Optional[str],
        kill_timeout: float = 90.0,
        poll_interval: float = 1.0,
        connect_attempts: int = 3,
        retry_delay: float = 5.0,
        output: TextIO = sys.stdout,
    ) -> None:
        self.rm = rm
        self.app_name = app_name
        self.command = list(command)
        self.state_file = state_file
        self.kill_timeout = kill_timeout
        self.poll_interval = poll_interval
        self.connect_attempts = connect_attempts
        self.retry_delay = retry_delay
        self.output = output
        self.stop_requested = threading.Event()
        self.signal_name = ""
        self._app_id: Optional[str] = None
        self._lock = threading.Lock()

    @property
    def app_id(self) -> Optional[str]:
        with self._lock:
            return self._app_id

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: Optional[FrameType]) -> None:
        self.signal_name = signal.Signals(signum).name
        self.stop_requested.set()

    def run(self) -> int:
        self._remove_state_file()
        self.kill_left_over(self._list_at_start())
        if self.stop_requested.is_set():
            LOG.info("stop requested (%s) before submitting: nothing to stop", self.signal_name)
            return 0
        LOG.info("submitting YARN application %s: %s", self.app_name, " ".join(self.command))
        # The supervisor's own import path (customer_pipeline.zip): spark-submit on YARN would
        # add a PYTHONPATH it finds to the ApplicationMaster's and the executors'.
        environment = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
        try:
            child = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=environment,
                # Signals (Ctrl-C in a terminal) reach the supervisor only, which stops the child.
                start_new_session=True,
            )
        except OSError as error:
            raise SupervisorError(f"cannot run {self.command[0]}: {error.strerror}", EXIT_BAD_SETTINGS) from None
        reader = threading.Thread(target=self._pass_output, args=(child,), name="spark-submit-output", daemon=True)
        reader.start()
        next_lookup = time.monotonic() + self.poll_interval
        try:
            while True:
                if self.stop_requested.is_set():
                    return self._stop(child, reader)
                code = child.poll()
                if code is not None:
                    reader.join()
                    return self._ended(code)
                if self.app_id is None and time.monotonic() >= next_lookup:
                    self._look_up_submitted()
                    next_lookup = time.monotonic() + self.poll_interval
                self.stop_requested.wait(0.2)
        finally:
            self._stop_child(child)
            self._remove_state_file()

    def _list_at_start(self) -> List[Application]:
        """The left-over applications; a few attempts, as the ResourceManager may be restarting."""
        for attempt in range(1, self.connect_attempts + 1):
            try:
                return self.rm.active_applications(self.app_name)
            except ResourceManagerError as error:
                if self.stop_requested.is_set():
                    return []
                if attempt == self.connect_attempts:
                    raise SupervisorError(
                        f"cannot reach the YARN ResourceManager at {self.rm.address} after {attempt} attempt(s)"
                        f" ({error}); check customer_stream_yarn_resourcemanager_webapp and that the"
                        " ResourceManager runs"
                    ) from None
                self.stop_requested.wait(self.retry_delay)
        return []

    def kill_left_over(self, apps: List[Application]) -> None:
        for app in apps:
            LOG.warning(
                "killing YARN application %s (%s) of user %s, left running by an earlier start of %s",
                app.id,
                app.state,
                app.user,
                self.app_name,
            )
            try:
                self.rm.kill(app.id)
                ended = self.wait_final(app.id)
            except ResourceManagerError as error:
                raise SupervisorError(
                    f"cannot kill YARN application {app.id} left by an earlier start: {error}"
                ) from None
            if ended is None:
                raise SupervisorError(
                    f"YARN application {app.id} left by an earlier start is not final {self.kill_timeout:.0f} s after"
                    " the kill request: not submitting a second one"
                )

    def wait_final(self, app_id: str) -> Optional[Application]:
        """The application once final, or None after kill_timeout seconds."""
        deadline = time.monotonic() + self.kill_timeout
        while True:
            app = self.rm.application(app_id)
            if app.final:
                return app
            if time.monotonic() >= deadline:
                return None
            time.sleep(self.poll_interval)

    def _pass_output(self, child: "subprocess.Popen[bytes]") -> None:
        assert child.stdout is not None
        last_report = ""
        for raw in child.stdout:
            line = raw.decode("utf-8", "replace")
            report = _REPORT.search(line)
            if report and report.group(0) == last_report:
                continue
            last_report = report.group(0) if report else last_report
            self.output.write(line)
            self.output.flush()
            submitted = _SUBMITTED.search(line)
            if submitted:
                self._submitted(submitted.group(1))

    def _look_up_submitted(self) -> None:
        """Learn the application id from the ResourceManager when spark-submit's log hides it.

        spark-submit prints "Submitted application ..." at INFO, which a quieter log4j2
        configuration of the cluster's Spark drops. The applications left by an earlier start
        were killed before submitting, so an unfinished one of this name and user is ours.
        """
        try:
            apps = self.rm.active_applications(self.app_name)
        except ResourceManagerError:
            return  # asked again at the next poll
        if len(apps) == 1:
            self._submitted(apps[0].id)

    def _submitted(self, app_id: str) -> None:
        with self._lock:
            if self._app_id is not None:
                return
            self._app_id = app_id
        if self.state_file:
            try:
                with open(self.state_file + ".tmp", "w", encoding="utf-8") as handle:
                    handle.write(app_id + "\n")
                os.replace(self.state_file + ".tmp", self.state_file)
            except OSError as error:
                LOG.warning("cannot write the application id to %s: %s", self.state_file, error.strerror)
        LOG.info(
            "YARN application %s submitted (driver log: yarn logs -applicationId %s)%s",
            app_id,
            app_id,
            f"; id written to {self.state_file}" if self.state_file else "",
        )

    def _remove_state_file(self) -> None:
        if self.state_file:
            try:
                os.remove(self.state_file)
            except FileNotFoundError:
                pass
            except OSError as error:
                LOG.warning("cannot remove %s: %s", self.state_file, error.strerror)

    def _stop(self, child: "subprocess.Popen[bytes]", reader: threading.Thread) -> int:
        app_id = self.app_id
        if app_id is None:
            # Not submitted yet: stop spark-submit, then kill what it may have submitted meanwhile.
            LOG.info(
                "stop requested (%s) before YARN accepted the application: stopping spark-submit", self.signal_name
            )
            self._stop_child(child)
            reader.join(5)
            app_id = self.app_id
            if app_id is None:
                try:
                    self.kill_left_over(self.rm.active_applications(self.app_name))
                except (ResourceManagerError, SupervisorError) as error:
                    LOG.error("stopped; could not check for an application submitted meanwhile: %s", error)
                    return EXIT_FAILED
                return 0
        LOG.info("stop requested (%s): killing YARN application %s", self.signal_name, app_id)
        try:
            self.rm.kill(app_id)
            app = self.wait_final(app_id)
        except ResourceManagerError as error:
            LOG.error(
                "stop: cannot kill YARN application %s (%s); it may still run: the next start kills it, or"
                " run yarn application -kill %s",
                app_id,
                error,
                app_id,
            )
            return EXIT_FAILED
        if app is None:
            LOG.error(
                "stop: YARN application %s is not final %.0f s after the kill request; the next start kills it",
                app_id,
                self.kill_timeout,
            )
            return EXIT_FAILED
        self._stop_child(child)
        reader.join(5)  # spark-submit's last lines before this one
        LOG.info("stopped: YARN application %s is %s", app_id, app.state)
        return 0

    def _ended(self, code: int) -> int:
        app_id = self.app_id
        if app_id is None:
            raise SupervisorError(
                f"spark-submit exited with code {code} before YARN accepted an application (its output is above)"
            )
        try:
            app = self.rm.application(app_id)
        except ResourceManagerError as error:
            if code == 0:
                LOG.info("YARN application %s ended, spark-submit exited 0 (final state unread: %s)", app_id, error)
                return 0
            raise SupervisorError(
                f"YARN application {app_id} ended: spark-submit exited with code {code};"
                f" its final state is unread: {error}"
            ) from None
        if not app.final:
            # spark-submit died (e.g. out of memory) while the application runs: nobody would stop it.
            LOG.error(
                "spark-submit exited with code %d while YARN application %s is %s: killing it", code, app_id, app.state
            )
            try:
                self.rm.kill(app_id)
                self.wait_final(app_id)
            except ResourceManagerError as error:
                LOG.error("cannot kill YARN application %s (%s): the next start kills it", app_id, error)
            return EXIT_FAILED
        if app.succeeded and code == 0:
            LOG.info("YARN application %s ended %s", app_id, app.outcome())
            return 0
        raise SupervisorError(f"YARN application {app_id} ended {app.outcome()}; spark-submit exit code {code}")

    def _stop_child(self, child: "subprocess.Popen[bytes]", grace: float = 10.0) -> None:
        if child.poll() is not None:
            return
        child.terminate()
        try:
            child.wait(grace)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def check_command(command: List[str]) -> List[str]:
    """spark-submit's command with spark.yarn.submit.waitAppCompletion=true (added when absent)."""
    if not command:
        raise SupervisorError("no spark-submit command: give it after --", EXIT_BAD_SETTINGS)
    settings = [arg.partition("=")[2] for arg in command if arg.startswith(WAIT_APP_COMPLETION + "=")]
    if any(value.strip().lower() != "true" for value in settings):
        raise SupervisorError(
            f"{WAIT_APP_COMPLETION} must be true: spark-submit's exit is how the supervisor sees the"
            " application end (remove it from customer_stream_spark_conf)",
            EXIT_BAD_SETTINGS,
        )
    if not settings:
        command = [command[0], "--conf", f"{WAIT_APP_COMPLETION}=true", *command[1:]]
    return command


def parse_args(argv: List[str]) -> argparse.Namespace:
    if "--" in argv:
        split = argv.index("--")
        own, command = argv[:split], argv[split + 1 :]
    else:
        own, command = argv, []
    parser = argparse.ArgumentParser(
        prog="python3 -m customer_pipeline.stream.yarn_supervisor",
        description="Run spark-submit in YARN cluster mode and answer for its application.",
        usage="%(prog)s --resourcemanager URL --app-name NAME --user USER [options] -- spark-submit ...",
    )
    parser.add_argument(
        "--resourcemanager", default="", metavar="URL", help="ResourceManager web address, http://rm:8088"
    )
    parser.add_argument("--app-name", required=True, help="the application's name (spark-submit --name)")
    parser.add_argument("--user", required=True, help="YARN user of the application (HADOOP_USER_NAME)")
    parser.add_argument("--state-file", default="", metavar="FILE", help="file receiving the running application's id")
    parser.add_argument(
        "--kill-timeout",
        type=float,
        default=90.0,
        metavar="SECONDS",
        help="how long a killed application may take to become final (default 90)",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="seconds between two reads of a killed application's state (default 1)",
    )
    parser.add_argument(
        "--connect-attempts", type=int, default=3, help="attempts to reach the ResourceManager at start (default 3)"
    )
    parser.add_argument(
        "--retry-delay", type=float, default=5.0, metavar="SECONDS", help="seconds between those attempts (default 5)"
    )
    args = parser.parse_args(own)
    args.command = command
    return args


def configure_logging() -> None:
    log_to_journal(LOG)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging()
    try:
        if not _RM_ADDRESS.fullmatch(args.resourcemanager):
            raise SupervisorError(
                f"--resourcemanager {args.resourcemanager!r} is not a ResourceManager web address such as"
                " http://node1:8088: set customer_stream_yarn_resourcemanager_webapp",
                EXIT_BAD_SETTINGS,
            )
        if args.connect_attempts < 1 or args.kill_timeout <= 0 or args.poll_interval <= 0:
            raise SupervisorError(
                "--connect-attempts, --kill-timeout and --poll-interval must be positive", EXIT_BAD_SETTINGS
            )
        supervisor = Supervisor(
            ResourceManager(args.resourcemanager, args.user),
            args.app_name,
            check_command(args.command),
            args.state_file or None,
            kill_timeout=args.kill_timeout,
            poll_interval=args.poll_interval,
            connect_attempts=args.connect_attempts,
            retry_delay=args.retry_delay,
        )
        supervisor.install_signal_handlers()
        return supervisor.run()
    except SupervisorError as error:
        LOG.error("%s", error)
        return error.exit_code


if __name__ == "__main__":
    sys.exit(main())
