// histogram.hpp: latencies in fixed memory, with about 1% precision.
//
// A sample is a count of microseconds. Values below 128 have a bucket each;
// above, every power of two [2^k, 2^(k+1)) is cut into 64 equal buckets, so
// a bucket is never wider than 1/64 of its values (HdrHistogram's idea, in a
// few lines). Two histograms merge by adding buckets: each load thread keeps
// its own and nothing is shared while the load runs.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>

namespace lg {

class Histogram {
public:
    void record(uint64_t us) {
        ++buckets_[index(std::min(us, kMaxValue))];
        ++count_;
        sum_ += us;
        sum_squares_ += static_cast<double>(us) * static_cast<double>(us);
        max_ = std::max(max_, us);
    }

    void merge(const Histogram& other) {
        for (size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
        count_ += other.count_;
        sum_ += other.sum_;
        sum_squares_ += other.sum_squares_;
        max_ = std::max(max_, other.max_);
    }

    uint64_t count() const { return count_; }
    uint64_t max() const { return max_; }
    double mean() const { return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0; }
    /// The standard deviation of the samples (exact: from their sum of squares).
    double stdev() const {
        if (count_ == 0) return 0;
        double m = mean();
        return std::sqrt(std::max(0.0, sum_squares_ / static_cast<double>(count_) - m * m));
    }

    /// The smallest recorded value v such that a share `q` (0..1) of samples
    /// is <= v, reported as the middle of its bucket (and never above max).
    uint64_t percentile(double q) const {
        if (count_ == 0) return 0;
        auto rank = static_cast<uint64_t>(q * static_cast<double>(count_) + 0.5);
        rank = std::clamp<uint64_t>(rank, 1, count_);
        uint64_t seen = 0;
        for (size_t i = 0; i < buckets_.size(); ++i) {
            seen += buckets_[i];
            if (seen >= rank) return std::min(middle(i), max_);
        }
        return max_;
    }

    static size_t index(uint64_t v) {
        if (v < 128) return v;
        int shift = std::bit_width(v) - 7;  // v >> shift lands in [64, 128)
        return 128 + static_cast<size_t>(shift - 1) * 64 + static_cast<size_t>((v >> shift) - 64);
    }
    static uint64_t lowest(size_t i) {
        if (i < 128) return i;
        size_t shift = (i - 128) / 64 + 1;
        return ((i - 128) % 64 + 64) << shift;
    }
    static uint64_t middle(size_t i) { return i < 128 ? i : lowest(i) + (uint64_t{1} << ((i - 128) / 64 + 1)) / 2; }

private:
    static constexpr uint64_t kMaxValue = (uint64_t{1} << 40) - 1;  // 12.7 days in microseconds
    std::array<uint64_t, 128 + 34 * 64> buckets_{};
    uint64_t count_ = 0, sum_ = 0, max_ = 0;
    double sum_squares_ = 0;
};

}  // namespace lg
