package boltq

import (
	"container/heap"
	"sync"
	"time"
)

// reaper keeps, per queue with messages in flight, the time its earliest delivery times
// out; the Queue's reaper goroutine sleeps until the first of them. One entry per queue,
// not per message: 10,000 idle queues cost nothing and a busy queue whose messages are
// acked in time costs one wake-up per visibility timeout at most.
type reaper struct {
	mu   sync.Mutex
	h    reapHeap
	wake chan struct{} // cap 1: the earliest deadline moved earlier
}

type reapItem struct {
	q  *q
	at time.Time
}

type reapHeap []reapItem

func (h reapHeap) Len() int           { return len(h) }
func (h reapHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h reapHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].q.reapNext, h[j].q.reapNext = i, j
}
func (h *reapHeap) Push(x any) {
	it := x.(reapItem)
	it.q.reapNext = len(*h)
	*h = append(*h, it)
}
func (h *reapHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = reapItem{}
	*h = old[:len(old)-1]
	it.q.reapNext = -1
	return it
}

// schedule makes sure x is looked at no later than at.
func (r *reaper) schedule(x *q, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i := x.reapNext; i >= 0 {
		if !at.Before(r.h[i].at) {
			return
		}
		r.h[i].at = at
		heap.Fix(&r.h, i)
	} else {
		heap.Push(&r.h, reapItem{q: x, at: at})
	}
	if x.reapNext == 0 {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

func (r *reaper) unschedule(x *q) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if x.reapNext >= 0 {
		heap.Remove(&r.h, x.reapNext)
	}
}

// due pops the queues due at now, or returns how long until the next one (0: none).
func (r *reaper) due(now time.Time) ([]*q, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*q
	for len(r.h) > 0 && !r.h[0].at.After(now) {
		out = append(out, heap.Pop(&r.h).(reapItem).q)
	}
	if len(out) > 0 || len(r.h) == 0 {
		return out, 0
	}
	return nil, r.h[0].at.Sub(now)
}

// runReaper is the Queue's reaper goroutine, from Open to Close.
func (s *Queue) runReaper() {
	defer close(s.reaperDone)
	for {
		now := s.clock.Now()
		due, wait := s.reaper.due(now)
		for _, x := range due {
			s.expire(x, now)
		}
		if len(due) > 0 {
			continue
		}
		var timer <-chan time.Time
		if wait > 0 {
			timer = s.clock.After(wait)
		}
		select {
		case <-timer:
		case <-s.reaper.wake:
		case <-s.stop:
			return
		}
	}
}
