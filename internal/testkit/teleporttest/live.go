package teleporttest

import (
	"sync"
	"time"
)

// Now is the cluster's clock: this host's, moved by Config.ClockOffset.
func (s *Server) Now() time.Time { return time.Now().Add(s.clockOffset).UTC() }

// liveTick is how often Live adds events.
const liveTick = 100 * time.Millisecond

// Live makes the cluster produce events as a live one does: every tenth of
// a second, a tenth of perSecond generated events timed by the cluster's
// clock (Now) over that tenth of a second, added as they happen. stop ends
// it and returns every event added.
func (s *Server) Live(g *Generator, perSecond int) (stop func() []*Event) {
	var (
		mu     sync.Mutex
		all    []*Event
		done   = make(chan struct{})
		ended  = make(chan struct{})
		remain float64
	)
	go func() {
		defer close(ended)
		t := time.NewTicker(liveTick)
		defer t.Stop()
		last := s.Now()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			now := s.Now()
			remain += float64(perSecond) * now.Sub(last).Seconds()
			n := int(remain)
			remain -= float64(n)
			if n > 0 {
				evs := g.Events(n, last, now.Sub(last)/time.Duration(n))
				s.Store.Add(evs...)
				mu.Lock()
				all = append(all, evs...)
				mu.Unlock()
			}
			last = now
		}
	}()
	var once sync.Once
	return func() []*Event {
		once.Do(func() { close(done) })
		<-ended
		mu.Lock()
		defer mu.Unlock()
		return all
	}
}
