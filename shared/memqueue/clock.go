package memqueue

import (
	"container/heap"
	"time"

	"github.com/followups/followups/shared/followup"
)

// Clock tells the time and wakes a waiter when a given time comes. The Queue
// and the Timer take one, so tests move time by hand instead of sleeping.
type Clock interface {
	followup.Clock
	// Alarm returns a channel that receives once the clock reaches at (at
	// once when at is not after Now), and a function that releases the
	// alarm, reporting whether it stopped it before it went off. The time is
	// absolute, not a duration, so a clock that moves between a caller's Now
	// and its Alarm cannot push the wake-up later.
	Alarm(at time.Time) (ring <-chan time.Time, release func() bool)
}

// SystemClock is the wall clock, waking through the runtime's timers.
type SystemClock struct{ followup.SystemClock }

// Alarm arms a runtime timer for at.
func (SystemClock) Alarm(at time.Time) (<-chan time.Time, func() bool) {
	t := time.NewTimer(time.Until(at))
	return t.C, t.Stop
}

// epoch writes times as nanoseconds since a fixed instant: a waiting message
// spends 8 bytes on its due time instead of time.Time's 24. The instant comes
// from Clock.Now, so with the system clock offsets of times taken from Now
// follow the monotonic clock and a step of the wall clock does not move them.
type epoch struct{ zero time.Time }

func (e epoch) offset(t time.Time) int64 { return int64(t.Sub(e.zero)) }

func (e epoch) time(off int64) time.Time { return e.zero.Add(time.Duration(off)) }

// timed is what a dueHeap holds: something due at an epoch offset that
// keeps its place in the heap, so it can be moved or removed.
type timed interface {
	dueOffset() int64
	heapIndex() int // -1 when not in the heap
	setIndex(i int)
}

// dueHeap is a container/heap min-heap of timed things, earliest first.
type dueHeap[T timed] []T

func (h dueHeap[T]) Len() int           { return len(h) }
func (h dueHeap[T]) Less(i, j int) bool { return h[i].dueOffset() < h[j].dueOffset() }

func (h dueHeap[T]) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].setIndex(i)
	h[j].setIndex(j)
}

func (h *dueHeap[T]) Push(x any) {
	w := x.(T)
	w.setIndex(len(*h))
	*h = append(*h, w)
}

func (h *dueHeap[T]) Pop() any {
	old := *h
	n := len(old) - 1
	w := old[n]
	var zero T
	old[n] = zero
	*h = old[:n]
	w.setIndex(-1)
	return w
}

// place puts w in the heap at its due offset, or moves it there when it is
// already in. It reports whether w is now the earliest, so the caller knows
// to wake its waitLoop.
func (h *dueHeap[T]) place(w T) (earliest bool) {
	if i := w.heapIndex(); i >= 0 {
		heap.Fix(h, i)
	} else {
		heap.Push(h, w)
	}
	return w.heapIndex() == 0
}

// remove takes w out of the heap.
func (h *dueHeap[T]) remove(w T) { heap.Remove(h, w.heapIndex()) }

// popDue takes out the earliest when it is due by off.
func (h *dueHeap[T]) popDue(off int64) (w T, ok bool) {
	if len(*h) == 0 || (*h)[0].dueOffset() > off {
		return w, false
	}
	return heap.Pop(h).(T), true
}

// next returns the due offset of the earliest, if any.
func (h dueHeap[T]) next() (int64, bool) {
	if len(h) == 0 {
		return 0, false
	}
	return h[0].dueOffset(), true
}

// waitLoop is the one goroutine of a Queue or a Timer. release does
// everything due at the time it is given and returns the next due time; the
// loop then sleeps on a single alarm until that time, a poke (something
// earlier arrived), or quit. However many things wait, they cost no
// goroutine and no timer of their own.
func waitLoop(clock Clock, poke, quit <-chan struct{}, release func(now time.Time) (next time.Time, ok bool)) {
	for {
		next, ok := release(clock.Now())
		var ring <-chan time.Time
		disarm := func() bool { return false }
		if ok {
			ring, disarm = clock.Alarm(next)
		}
		select {
		case <-ring:
		case <-poke:
		case <-quit:
			disarm()
			return
		}
		disarm()
	}
}

// wake pokes a waitLoop without blocking; one pending poke is enough.
func wake(poke chan<- struct{}) {
	select {
	case poke <- struct{}{}:
	default:
	}
}
