"""ExaBGP's API process in the lab (run by ExaBGP with the system python, stdlib only).

ExaBGP talks to the processes it runs over their stdin and stdout: it writes one
JSON message a line to our stdin (states, OPENs, UPDATEs, NOTIFICATIONs) and
reads commands ("announce route ...") from our stdout. This process appends each
message to ``DIR/messages.jsonl`` for the lab to read, and copies each line the
lab writes into the FIFO ``DIR/commands`` to its stdout. It ends when ExaBGP
closes its stdin.

Usage: exabgp_pipe.py DIR
"""

import os
import sys
import threading


def forward_commands(fifo: str) -> None:
    # O_RDWR: the open does not wait for a writer, and the lab's writers closing
    # never reads as end of file
    fd = os.open(fifo, os.O_RDWR)
    with os.fdopen(fd, "r") as commands:
        for line in commands:
            sys.stdout.write(line)
            sys.stdout.flush()


def main() -> None:
    directory = sys.argv[1]
    threading.Thread(target=forward_commands, args=(os.path.join(directory, "commands"),),
                     daemon=True).start()
    with open(os.path.join(directory, "messages.jsonl"), "a") as out:
        for line in sys.stdin:
            if line.startswith("{"):
                out.write(line if line.endswith("\n") else line + "\n")
                out.flush()


if __name__ == "__main__":
    main()
