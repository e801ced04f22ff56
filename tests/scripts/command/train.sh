#!/bin/sh
# A job wrapper as clusters use: set up the environment, then hand every argument to the trainer.
set -e
for arg in "$@"; do
    case "$arg" in
        --lr=*) lr="${arg#--lr=}" ;;
    esac
done
echo "wrapper: got $# arguments: $*"
echo "eval_accuracy: $lr"
