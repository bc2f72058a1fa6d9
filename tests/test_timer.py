"""The event loop: virtual time, ordering, cancellation."""

from hv.xen.timer import EventLoop


def test_timers_run_in_time_then_priority_then_insertion_order():
    loop = EventLoop()
    ran = []
    loop.schedule(20, ran.append, "t20")
    loop.schedule(10, ran.append, "t10-p1", priority=1)
    loop.schedule(10, ran.append, "t10-p0-first", priority=0)
    loop.schedule(10, ran.append, "t10-p0-second", priority=0)
    assert loop.run() == 4
    assert ran == ["t10-p0-first", "t10-p0-second", "t10-p1", "t20"]
    assert loop.now == 20


def test_step_advances_to_the_next_timer_only():
    loop = EventLoop()
    ran = []
    loop.schedule(5, ran.append, 5)
    loop.schedule(7, ran.append, 7)
    assert loop.peek() == 5
    assert loop.step() is True and ran == [5] and loop.now == 5
    assert loop.peek() == 7


def test_run_until_stops_before_later_timers_and_sets_the_clock():
    loop = EventLoop()
    ran = []
    loop.schedule(100, ran.append, "a")
    loop.schedule(300, ran.append, "b")
    assert loop.run(until=200) == 1
    assert ran == ["a"] and loop.now == 200 and loop.peek() == 300


def test_cancelled_timers_never_run_and_do_not_count():
    loop = EventLoop()
    ran = []
    t = loop.schedule(10, ran.append, "x")
    loop.schedule(20, ran.append, "y")
    t.cancel()
    assert loop.pending() == 1 and loop.peek() == 20
    loop.run()
    assert ran == ["y"]


def test_a_time_in_the_past_runs_now_not_before():
    loop = EventLoop(now=1000)
    ran = []
    t = loop.schedule(10, lambda: ran.append(loop.now))
    assert t.when == 1000
    loop.run()
    assert ran == [1000]


def test_timers_scheduled_while_running_join_in_order():
    loop = EventLoop()
    ran = []

    def first():
        ran.append(("first", loop.now))
        loop.after(5, lambda: ran.append(("chained", loop.now)))

    loop.schedule(10, first)
    loop.schedule(12, lambda: ran.append(("second", loop.now)))
    loop.run()
    assert ran == [("first", 10), ("second", 12), ("chained", 15)]


def test_idle_loop_steps_nothing():
    loop = EventLoop()
    assert loop.step() is False and loop.peek() is None and loop.run() == 0
