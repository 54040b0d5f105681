// A ServerView with fixed answers, so WHO and STATS are predictable in tests.
#pragma once

#include "protocol/commands.hpp"

struct FakeServer : sl::ServerView {
    sl::Identity identity() const override { return {"fake", 10, 1, 11, -1, 7}; }
    sl::Totals totals() const override { return {"fake", 2, 3, 4, 5}; }
};
