// A ServerView with fixed answers, so WHO and STATS are predictable in tests.
#pragma once

#include "protocol/commands.hpp"

struct FakeServer : sl::ServerView {
    bool stop = false;  // a graceful stop has begun
    bool stopping() const override { return stop; }
    sl::Identity identity() const override { return {"fake", 10, 1, 11, -1, 7}; }
    sl::Totals totals() const override { return {"fake", 2, 3, 4, 5}; }
    // Two workers: one waiting in accept, one executing with a connection open.
    sl::Status status() const override {
        sl::Status s{"fake", "blocking", 10, totals(), {}};
        sl::StatusRow a;
        a.worker = 0;
        a.pid = a.tid = 11;
        a.generation = 0;
        a.accepts = 2;
        a.requests = 3;
        a.wakeups = 2;
        a.spurious = 0;
        sl::StatusRow b = a;
        b.worker = 1;
        b.pid = b.tid = 12;
        b.state = 'W';
        b.open = 1;
        b.cpu_ms = 40;
        s.rows = {a, b};
        return s;
    }
};
