"""A script the corpus files can name; none of them is valid, so it never runs."""
raise SystemExit("the bad-flags corpus must never run a trial")
