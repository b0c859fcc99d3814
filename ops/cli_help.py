"""The CLI's help texts (an example for every command), typo suggestions, and shell completion.

Completion scripts are generated from the parser itself (``config-ledger completion bash``), so
they never fall behind the commands and flags.
"""

from __future__ import annotations

import argparse
import difflib
import re

__all__ = ["EXAMPLES", "suggestion", "completion_script"]

EXAMPLES: dict[str, str] = {
    "up": "config-ledger up                      # NATS, PostgreSQL, projector and API in the foreground",
    "get": "config-ledger get billing | jq .     # the bare document when piped\n"
           "  config-ledger get billing db.pool -o raw\n"
           "  config-ledger get billing --version 3 -o yaml",
    "edit": "config-ledger edit billing -m 'raise the pool'     # in $VISUAL, else $EDITOR, else vi",
    "set": "config-ledger set billing billing.yaml -m 'new pool'\n"
           "  cat billing.yaml | config-ledger set billing - --format yaml -m 'from stdin'",
    "patch": "config-ledger patch billing '{\"db\": {\"pool\": 20}}' -m 'more connections'\n"
             "  echo 'db: {pool: 20}' | config-ledger patch billing - --format yaml -m why",
    "delete": "config-ledger delete billing -m 'retired'   # history stays; rollback restores it",
    "history": "config-ledger history billing --limit 5\n"
               "  config-ledger history billing -o json | jq '.versions[].version'",
    "diff": "config-ledger diff billing 3 4\n  config-ledger diff billing 2026-11-28T10:00:00Z now",
    "rollback": "config-ledger rollback billing -m 'bad deploy'   # to the previous version\n"
                "  config-ledger rollback billing --to 3 -m 'back to 3'",
    "watch": "config-ledger watch billing",
    "snapshot": "config-ledger snapshot                          # every service, now\n"
                "  config-ledger snapshot --at 2026-11-28T10:00:00Z -o json",
    "services": "config-ledger services | cut -f1            # one name per line when piped",
    "replay": "config-ledger replay billing --until 2026-11-28T10:00:00Z",
    "verify": "config-ledger verify && echo intact",
    "completion": "source <(config-ledger completion bash)\n"
                  "  config-ledger completion zsh > \"${fpath[1]}/_config-ledger\"\n"
                  "  config-ledger completion fish > ~/.config/fish/completions/config-ledger.fish",
    "apply": "config-ledger streams apply --dry-run",
    "status": "config-ledger projector status --json",
}


def suggestion(message: str, parser: argparse.ArgumentParser) -> str:
    """`` (did you mean 'services'?)`` for ``invalid choice: 'servics'``, else ``""``."""
    found = re.search(r"invalid choice: '([^']*)'", message)
    if not found:
        return ""
    choices: list[str] = []
    for action in parser._actions:  # noqa: SLF001 - argparse has no public accessor
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            choices.extend(action.choices)
    close = difflib.get_close_matches(found.group(1), choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _tree(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], list[str]]:
    """Every command path -> the words that may follow it (subcommands and flags)."""
    words: list[str] = []
    tree: dict[tuple[str, ...], list[str]] = {}
    for action in parser._actions:  # noqa: SLF001
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for name, sub in action.choices.items():
                words.append(name)
                tree.update(_tree(sub, (*path, name)))
        else:
            words.extend(s for s in action.option_strings if s.startswith("--"))
    tree[path] = sorted(set(words))
    return tree


def completion_script(shell: str, parser: argparse.ArgumentParser) -> str:
    tree = _tree(parser)
    prog = parser.prog
    if shell == "bash":
        cases = "\n".join(f'        "{" ".join(k)}") words="{" ".join(v)}" ;;' for k, v in sorted(tree.items()) if k)
        return f"""# bash completion for {prog}: source <({prog} completion bash)
_config_ledger() {{
    local cur path="" w words
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    for w in "${{COMP_WORDS[@]:1:COMP_CWORD-1}}"; do
        case "$w" in -*) ;; *) if [[ " $(_config_ledger_words "$path") " == *" $w "* ]]; then path="${{path:+$path }}$w"; fi ;; esac
    done
    COMPREPLY=( $(compgen -W "$(_config_ledger_words "$path")" -- "$cur") )
}}
_config_ledger_words() {{
    local words
    case "$1" in
        "") words="{" ".join(tree[()])}" ;;
{cases}
    esac
    echo "$words"
}}
complete -F _config_ledger {prog}
"""
    if shell == "zsh":
        return f"""#compdef {prog}
# zsh completion for {prog}: {prog} completion zsh > "${{fpath[1]}}/_{prog}"
autoload -U bashcompinit && bashcompinit
{completion_script("bash", parser)}"""
    if shell == "fish":
        lines = [f"# fish completion for {prog}: {prog} completion fish > ~/.config/fish/completions/{prog}.fish",
                 f"complete -c {prog} -f"]
        for path, words in sorted(tree.items()):
            cond = "__fish_use_subcommand" if not path else \
                "__fish_seen_subcommand_from " + path[-1]
            for word in words:
                if word.startswith("--"):
                    lines.append(f"complete -c {prog} -n '{cond}' -l {word[2:]}")
                elif not path or word not in tree.get((), []):
                    lines.append(f"complete -c {prog} -n '{cond}' -a {word}")
        return "\n".join(lines) + "\n"
    raise ValueError(shell)
