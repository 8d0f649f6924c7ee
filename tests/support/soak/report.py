"""bench/SOAK.md from a soak's Result: operations and faults by kind, the deploy and upgrade mid-run, the invariant
checks made (those made during the run apart), the violations (with the history that led to each), and the seed
that replays the run."""

import datetime


def markdown(result):
    lines = [
        "# Fault soak (issue 16)",
        "",
        f"Seed `{result.seed}`, {result.minutes:g} minutes of faults; replay with "
        f"`make soak SOAK_SEED={result.seed} SOAK_MINUTES={result.minutes:g}`. Written "
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        "## Operations (kind, answer)",
        "",
        "| operation | answer | count |",
        "| --- | --- | ---: |",
    ]
    for (kind, outcome), count in sorted(result.operations().items()):
        lines.append(f"| {kind} | {outcome} | {count} |")
    lines += ["", "## Faults", "", "| fault | count |", "| --- | ---: |"]
    for kind, count in sorted(result.faults().items()):
        lines.append(f"| {kind} | {count} |")
    lines += ["", "## The deploy and the upgrade mid-run", "", "```"]
    lines += [event.line() for event in result.history.of_actor("upgrade")]
    lines += ["```", "", "## Invariant checks", "", "| invariant | checks | violations |", "| --- | ---: | ---: |"]
    broken = {}
    for violation in result.violations:
        broken[violation.invariant] = broken.get(violation.invariant, 0) + 1
    for invariant, count in sorted(result.checker.checks.items()):
        lines.append(f"| {invariant} | {count} | {broken.get(invariant, 0)} |")
    lines += ["", f"## Violations: {len(result.violations)}", ""]
    if result.injector_error:
        lines += [f"The soak itself failed: `{result.injector_error!r}`", ""]
    for violation in result.violations:
        lines += ["```", violation.text(), "```", ""]
    return "\n".join(lines) + "\n"
