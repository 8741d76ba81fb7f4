"""The tap: settings, streams, the sandbox switch, and one-line fatal errors.

The CLI (`invoke`) reads its input files itself (`input_files.py`: one line for a bad
file), stops at once on SIGINT/SIGTERM with a final STATE (`shutdown.py`), and blanks the
credentials out of everything it logs (`redaction.py`).

With `sandbox` on, the tap starts a simulated portal in-process, which never outlives the
tap: it stops with `stop_sandbox`, at the end of a `with` block or of `invoke`, when the tap
is garbage-collected, or at the latest when the interpreter exits. So a program or a test
suite making many taps leaves no server behind.
"""

from __future__ import annotations

import logging
import typing as t
import weakref
from functools import cached_property

import click
import requests
from singer_sdk import Tap
from singer_sdk.exceptions import ConfigValidationError, FatalAPIError, RetriableAPIError
from singer_sdk.helpers._classproperty import classproperty
from singer_sdk.plugin_base import _ConfigInput
from singer_sdk.singerlib import StateMessage
from typing_extensions import override

from tap_udemy_business import redaction
from tap_udemy_business.api_session import ApiSession
from tap_udemy_business.input_files import InputFileError, read_catalog, read_config, read_state
from tap_udemy_business.settings import (
    CONFIG_SCHEMA,
    SECRET_SETTINGS,
    check_config,
    coerce_config,
    environment_config,
    first_error_per_setting,
)
from tap_udemy_business.shutdown import StopOnSignal
from tap_udemy_business.streams import STREAM_TYPES
from tap_udemy_business.urls import describe_url
from tap_udemy_business.writer import FastSingerWriter, flush

if t.TYPE_CHECKING:
    from types import TracebackType

    from singer_sdk import Stream

    from tap_udemy_business.sandbox import SandboxPortal

#: The CLI options naming a file that the tap reads itself (not click), see `invoke`.
FILE_OPTIONS = ("state", "catalog")


class TapUdemyBusiness(Tap):
    """Singer tap for the Udemy Business Courses and Reporting APIs."""

    name = "tap-udemy-business"
    package_name = "tap-udemy-business"
    config_jsonschema = CONFIG_SCHEMA
    message_writer_class = FastSingerWriter
    #: Stops the sandbox portal once: on `stop_sandbox`, or when the tap is collected or
    #: the interpreter exits (a `weakref.finalize` runs at exit too). None until started.
    _sandbox_finalizer: weakref.finalize[[], TapUdemyBusiness] | None = None

    @override
    def discover_streams(self) -> list[Stream]:
        """One stream per endpoint; see `streams.py`."""
        return [stream_type(tap=self) for stream_type in STREAM_TYPES]

    @classproperty
    @override
    def _env_var_config(cls) -> dict[str, t.Any]:  # noqa: N805 - a class property
        """Settings from environment variables, numbers and flags left as strings.

        The SDK's parser fails with a traceback on `TAP_UDEMY_BUSINESS_PAGE_SIZE=five`;
        `settings.environment_config` leaves the string for `_validate_config` to coerce or
        refuse by name.
        """
        cls.append_builtin_config(cls.config_jsonschema)
        return environment_config(cls.config_jsonschema, cls._env_var_prefix)

    @override
    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """Coerce values to their declared types, then add the checks a schema cannot express.

        Coercing here, the first thing the SDK does with the merged config, covers every
        source alike (files, dicts, environment), and leaves the int, float or bool in
        `self.config` for the streams (see `settings.coerce_config`, `settings.check_config`).
        """
        self.append_builtin_config(self.config_jsonschema)
        self._config = coerce_config(self._config, self.config_jsonschema)
        self._protect_secrets()
        errors = first_error_per_setting(super()._validate_config(raise_errors=False))
        errors += check_config(self.config)
        # The JSON Schema messages quote (repr) the offending value: never a secret's.
        errors = [self.redact(error) for error in errors]
        if errors and raise_errors:
            summary = "Config validation failed"
            raise ConfigValidationError(summary, errors=errors, schema=self.config_jsonschema)
        return errors

    def _protect_secrets(self) -> None:
        """Blank the credentials out of every log line from now on, in every encoding.

        Done as soon as the merged config (files, dicts, environment) is known, before
        the first message that could quote it; see `redaction.py`.
        """
        for name in SECRET_SETTINGS:
            redaction.SECRETS.add(self._config.get(name))
        redaction.SECRETS.add_basic_token(
            self._config.get("client_id"), self._config.get("client_secret")
        )
        redaction.protect_logging()

    def redact(self, text: str) -> str:
        """Text with the credentials blanked out: quoted, bare, encoded, as a Basic token."""
        return redaction.redact(text)

    @override
    def _setup_signal_handlers(self) -> None:
        """Leave signals alone: a tap used as a library must not take over its host's.

        singer-sdk's handlers wrote a STATE from inside the handler (into the middle of
        a line being written) and exited 0; the CLI installs `StopOnSignal` instead.
        """

    @cached_property
    def sandbox(self) -> SandboxPortal | None:
        """The in-process sandbox portal, started on first use when `sandbox` is on.

        It never outlives the tap. `invoke` stops it when the sync ends; a program using the
        tap as a library leaves a `with` block or calls `stop_sandbox`, and otherwise it stops
        when the tap is garbage-collected or, at the latest, when the interpreter exits: the
        finalizer holds the portal, never the tap, so it does not keep the tap alive. After
        a stop, the next use starts a fresh portal (the same data, another port). Its threads
        are named after the tap (`tap-udemy-business-sandbox-<port>`).
        """
        if not self.config.get("sandbox"):
            return None
        from tap_udemy_business.sandbox import SandboxPortal  # noqa: PLC0415 - only when on

        portal = SandboxPortal(name=f"{self.name}-sandbox").start()
        self._sandbox_finalizer = weakref.finalize(self, portal.stop)
        self.logger.info("Sandbox portal serving simulated data at %s", portal.base_url)
        return portal

    @cached_property
    def api_session(self) -> ApiSession:
        """What every stream shares: transport, credentials, rate governor (made on first use)."""
        config = dict(self.config)
        if self.sandbox is not None:
            config.update(self.sandbox.tap_config())
        return ApiSession(config)

    @classmethod
    @override
    def get_singer_command(cls) -> click.Command:
        """The SDK's command, with `--state` and `--catalog` read by `invoke`, not click.

        click would open them itself and answer a missing file with a usage screen;
        `invoke` reads them as it reads `--config`: one line naming the file.
        """
        command = super().get_singer_command()
        command.params = [
            click.Option([f"--{param.name}"], help=param.help, type=click.STRING)
            if isinstance(param, click.Option) and param.name in FILE_OPTIONS
            else param
            for param in command.params
        ]
        return command

    @classmethod
    @override
    def cb_config(
        cls,
        ctx: click.Context,
        param: click.Option,
        value: tuple[str, ...],
    ) -> _ConfigInput:
        """Read the `--config` files (or `ENV`); a bad file is one line and exit 1.

        Later files override earlier ones, as in singer-sdk.
        """
        config: dict[str, t.Any] = {}
        parse_env = False
        for path in value:
            if path == "ENV":
                parse_env = True
                continue
            try:
                config |= read_config(path)
            except InputFileError as exc:
                cls.logger.error("%s", exc)  # noqa: TRY400 - the line says it all
                ctx.exit(1)
        return _ConfigInput(config=config, parse_env=parse_env)

    @classmethod
    @override
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: _ConfigInput | None = None,
        state: str | None = None,
        catalog: str | None = None,
    ) -> None:
        """Run a sync; a failure becomes one line on stderr, after saving the state.

        Records already written stay written, and the STATE written here covers exactly
        them, so the next run resumes without loss. The traceback shows at DEBUG only.
        SIGINT and SIGTERM stop the sync at once the same way, with exit 130 or 143
        (see `shutdown.py`); a bad `--state` or `--catalog` file is one line and exit 1.
        """
        stop = StopOnSignal(cls.logger)
        stop.install()
        super(Tap, cls).invoke(about=about, about_format=about_format)
        cls.print_version(print_fn=cls.logger.info)
        config = config or _ConfigInput()
        try:
            input_state = None if state is None else read_state(state)
            input_catalog = None if catalog is None else read_catalog(catalog)
        except InputFileError as exc:
            cls.logger.error("%s", exc)  # noqa: TRY400 - the line says it all
            raise SystemExit(1) from None
        tap = cls(
            config=config.config,
            state=input_state,
            catalog=input_catalog,
            parse_env_config=config.parse_env,
            validate_config=True,
        )
        stop.final_state = tap.write_final_state
        try:
            tap.sync_all()
        except Exception as exc:  # every failure ends as one line and a final state
            tap.write_final_state()
            tap.logger.error(  # noqa: TRY400 - the traceback is for DEBUG only
                "Sync failed: %s",
                tap.redact(_one_line(exc)),
                exc_info=tap.logger.isEnabledFor(logging.DEBUG),
            )
            raise SystemExit(1) from None
        finally:
            tap.stop_sandbox()
            tap.close_api_session()

    def write_final_state(self) -> None:
        """Write the state as it is now: it covers every record written, and no other.

        Bookmarks move only after the records they cover were written, so whenever this
        runs (after a failure, or on a signal between two writes) the next run resumes
        from here without loss.
        """
        self.write_message(StateMessage(value=self.state))
        flush()

    def stop_sandbox(self) -> None:
        """Stop the sandbox portal now, if one runs; the next use of the tap starts another."""
        finalizer, self._sandbox_finalizer = self._sandbox_finalizer, None
        if finalizer is None:
            return
        finalizer()
        self.__dict__.pop("sandbox", None)  # cached properties: made again on next use
        self.close_api_session()

    def close_api_session(self) -> None:
        """Stop what the API session runs (its page worker); the next use makes another."""
        session = self.__dict__.pop("api_session", None)
        if session is not None:
            session.close()

    def __enter__(self) -> t.Self:
        """Use the tap in a `with` block, so its sandbox portal stops when the block ends."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the sandbox portal, if one was started (see `sandbox`)."""
        self.stop_sandbox()


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, RetriableAPIError):
        return f"gave up after retries: {exc}"
    if isinstance(exc, requests.RequestException):
        url = describe_url(exc.request.url) if exc.request and exc.request.url else "the API"
        return f"could not get a response from {url} ({type(exc).__name__})"
    first_line = str(exc).splitlines()[0] if str(exc) else ""
    if isinstance(exc, FatalAPIError):
        return first_line or type(exc).__name__
    return (
        f"unexpected {type(exc).__name__}: {first_line} (set TAP_UDEMY_BUSINESS_LOGLEVEL=DEBUG "
        "for the traceback, and please report it)"
    )


if __name__ == "__main__":
    TapUdemyBusiness.cli()
