// reuseport: a listening socket per place in the pool, and no shared one.
//
// With SO_REUSEPORT (Linux 3.9) several sockets may listen on one port, and
// the kernel picks one of them for each new connection. No shared wait
// queue, so no herd and no lock. Two costs come with it: the choice ignores
// load (a worker stuck on a slow request keeps receiving its share, which
// waits in its own backlog while others idle), and whatever waits in a
// socket's backlog is reset when that socket closes.
//
// The second cost is why the *master* owns the listeners here, one per place
// (0 .. --max-workers - 1), opened before the first fork and closed only at
// exit, as nginx opens its listening sockets in the master. A worker keeps
// the one of its place. When it leaves (crash, --max-requests, HUP), its
// successor inherits the same socket with whatever is queued on it: nothing
// is reset. When a place closes for good (the pool shrinks: TTOU, the dynamic
// pool's spare rules), the master first steers new connections away from it
// with a classic BPF program attached to the group (SO_ATTACH_REUSEPORT_CBPF,
// for TCP since Linux 4.6; socket(7)), which picks at random among the open
// places, and then the leaving worker serves what is still queued
// (leftover()). The kernel numbers a group's sockets in the order they began
// to listen and moves the last one into the hole when one closes; since the
// master never closes one while it runs, a socket's number is its place.
#include "accept/accept.hpp"

#include "base/die.hpp"
#include "base/shm.hpp"
#include "base/trace.hpp"

#include <linux/filter.h>
#include <sys/socket.h>

#include <atomic>
#include <memory>
#include <mutex>

namespace sl {
namespace {

class ReuseportAccept final : public AcceptStrategy, public MasterSide {
public:
    ReuseportAccept(int first, const ListenOptions& listen, int places)
        : listeners_(static_cast<size_t>(places)), open_(shared_flags(places)) {
        // Place 0 is the socket main() made; the others join the group in
        // place order and never leave it while the server runs.
        ListenOptions same = listen;
        same.port = local_port(first);  // --port 0: every place on the port the kernel chose
        listeners_[0].reset(first);
        for (int p = 1; p < places; ++p) listeners_[static_cast<size_t>(p)] = listen_or_die(same);
        steer({});  // until workers exist: everything waits in place 0, the first place a worker takes
    }

    ~ReuseportAccept() override { listeners_[0].release(); }  // main() owns place 0's socket

    // ---- worker side ----
    void worker_init(const WorkerId& me) override {
        place_ = me.place;
        // The other places' sockets are the master's: a worker keeps its own
        // (and place 0's, which belongs to main() in every process, as the
        // one shared socket of the other strategies does).
        for (size_t p = 1; p < listeners_.size(); ++p)
            if (static_cast<int>(p) != place_) listeners_[p].reset();
        mine_ = listeners_[static_cast<size_t>(place_)].get();
    }

    Fd accept(AcceptStats& stats) override { return count_wakeup(try_accept(mine_), stats); }

    Fd leftover() override {
        // The place closed: nobody else accepts here any more, so serve what
        // came. One thread at a time (04), and only while the place stays
        // closed: then only this worker accepts on the socket, and once
        // poll() says it is readable the (blocking) accept finds the
        // connection instead of waiting for one.
        std::lock_guard<std::mutex> one_at_a_time(drain_);
        if (!place_closed()) return Fd();  // the place lives on: its next worker takes what is queued
        if (!readable_within(mine_, kDrainQuietMs) || !place_closed()) return Fd();
        return try_accept(mine_);
    }

    MasterSide* master_side() override { return this; }

    int own_listener() const override { return mine_; }

    bool place_closed() const override { return place_ >= 0 && !open_[place_].load(); }

    // ---- master side ----
    void open_places(const std::vector<bool>& open) override {
        for (size_t p = 0; p < listeners_.size(); ++p) open_[p].store(p < open.size() && open[p]);
        steer(open);
    }

private:
    static std::atomic<bool>* shared_flags(int places) {
        auto* flags = static_cast<std::atomic<bool>*>(map_shared_or_die(sizeof(std::atomic<bool>) * places));
        for (int p = 0; p < places; ++p) new (&flags[p]) std::atomic<bool>(false);
        return flags;
    }

    // The program the kernel runs for each new connection: pick a random
    // open place. A = random; A %= open places; return the A-th of them.
    // With none open (before the first worker, between a lone worker and its
    // replacement, during a stop), return place 0: the connection waits in
    // its backlog for the next worker there, the first place a new worker takes.
    void steer(const std::vector<bool>& open) {
        std::vector<uint32_t> places;
        for (size_t p = 0; p < open.size(); ++p)
            if (open[p]) places.push_back(static_cast<uint32_t>(p));
        std::vector<sock_filter> code;
        if (!places.empty()) {
            code.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, static_cast<uint32_t>(SKF_AD_OFF + SKF_AD_RANDOM)));
            code.push_back(BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, static_cast<uint32_t>(places.size())));
            for (uint32_t i = 0; i < places.size(); ++i) {
                code.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, i, 0, 1));
                code.push_back(BPF_STMT(BPF_RET | BPF_K, places[i]));
            }
        }
        code.push_back(BPF_STMT(BPF_RET | BPF_K, 0));
        sock_fprog program{static_cast<unsigned short>(code.size()), code.data()};
        // Attached to any socket of the group, the program serves the whole group.
        if (::setsockopt(listeners_[0].get(), SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &program, sizeof program) < 0)
            die("setsockopt SO_ATTACH_REUSEPORT_CBPF");
        SL_TRACE("reuseport: new connections go to {} of {} places", places.size(), open.size());
    }

    std::vector<Fd> listeners_;  // index: place (in a worker, only its own is kept)
    std::atomic<bool>* open_;    // shared: is a place open (the master writes, leaving workers read)
    int place_ = -1;
    int mine_ = -1;
    std::mutex drain_;  // worker: leftover() by one thread at a time
};

}  // namespace

std::unique_ptr<AcceptStrategy> make_reuseport_strategy(int listen_fd, const ListenOptions& listen, int places) {
    return std::make_unique<ReuseportAccept>(listen_fd, listen, places);
}

}  // namespace sl
