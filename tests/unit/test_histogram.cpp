// The load engine's latency histogram: exact below 128 us, within 1/64 above.
#include "histogram.hpp"

#include <gtest/gtest.h>

namespace {

TEST(Histogram, BucketsAreExactBelow128AndNarrowAbove) {
    for (uint64_t v = 0; v < 128; ++v) EXPECT_EQ(lg::Histogram::lowest(lg::Histogram::index(v)), v);
    for (uint64_t v : {128ull, 129ull, 1000ull, 65535ull, 1234567ull, (1ull << 39) + 12345}) {
        size_t i = lg::Histogram::index(v);
        uint64_t low = lg::Histogram::lowest(i), next = lg::Histogram::lowest(i + 1);
        EXPECT_LE(low, v) << "value " << v;
        EXPECT_LT(v, next) << "value " << v;
        EXPECT_LE(next - low, low / 64 + 1) << "bucket of " << v << " wider than 1/64";
    }
}

TEST(Histogram, PercentilesOfAKnownSet) {
    lg::Histogram h;
    for (uint64_t v = 1; v <= 100; ++v) h.record(v);  // 1..100 us, exact buckets
    EXPECT_EQ(h.count(), 100u);
    EXPECT_EQ(h.percentile(0.5), 50u);
    EXPECT_EQ(h.percentile(0.99), 99u);
    EXPECT_EQ(h.percentile(1.0), 100u);
    EXPECT_EQ(h.max(), 100u);
    EXPECT_DOUBLE_EQ(h.mean(), 50.5);
}

TEST(Histogram, MergeAddsCounts) {
    lg::Histogram a, b;
    a.record(10);
    b.record(5000);
    b.record(5000);
    a.merge(b);
    EXPECT_EQ(a.count(), 3u);
    EXPECT_EQ(a.max(), 5000u);
    EXPECT_NEAR(static_cast<double>(a.percentile(0.9)), 5000.0, 5000.0 / 64);
}

TEST(Histogram, EmptyIsZero) {
    lg::Histogram h;
    EXPECT_EQ(h.percentile(0.99), 0u);
    EXPECT_EQ(h.mean(), 0.0);
}

}  // namespace
