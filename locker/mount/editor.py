"""Starting an editor on a file in a mount without it copying the secret elsewhere.

Editors keep what you type outside the file: vim's viminfo (neovim's ShaDa) holds yanked lines
and search patterns, an undo file may land in `undodir`. `private_editor` returns the command
line that turns those off for the editors we know; any other editor runs as it is (the guides
say what to check). No vault, no watchdog here.
"""

from __future__ import annotations

import os
import shlex

# vim and its relatives: no viminfo/ShaDa, no persistent undo, backups and swap next to the
# file only (that is, inside the mount, which is wiped).
_VIM_ARGS = ("-i", "NONE", "--cmd", "set noundofile backupdir=. directory=.")
_VIMS = frozenset({"vi", "vim", "nvim", "gvim", "vim.basic", "vim.tiny", "view", "rvim"})


def private_editor(editor: str, path: str) -> list[str]:
    """The argv to edit `path` with `editor` (a $VISUAL/$EDITOR command line, as
    `edit.editor_command` returns it), with the options that keep what is typed from leaving
    the mount."""
    argv = shlex.split(editor)
    if os.path.basename(argv[0]) in _VIMS:
        argv += _VIM_ARGS
    return [*argv, "--", path]
