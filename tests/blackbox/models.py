"""The models the suite runs the shared contracts against (as named in build/bin)."""
MODELS = ["single_process", "fork_per_conn", "prefork", "prefork_threads", "event_loop", "prefork_event_loop",
          "event_loop_threads", "uring"]
