"""`python -m llmgw.cli …`: how `llmgw up` and the tests start child processes."""

from llmgw.cli import main

main()
