package input

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/teleportbeat/teleportbeat/config"
	"github.com/teleportbeat/teleportbeat/internal/cursor"
)

// RunClusters reads every cluster of cfg (teleportbeat.clusters, or the
// one-cluster form) until ctx is done. The clusters share one registry,
// each under its cluster's key, so a config that goes from one cluster to
// several keeps the first cluster's position. A cluster that is down,
// expired or misconfigured degrades only itself: its error is logged with
// its entry, and the others go on. It returns an error only when every
// cluster stopped for good (then there is nothing left to do); a stop
// asked for (ctx) with some cluster refused is a clean one, the refusal
// having been said.
func RunClusters(ctx context.Context, cfg config.Config, s Settings) error {
	clusters := cfg.Clusters()
	if len(clusters) == 1 && clusters[0].Key() == "" {
		return Run(ctx, clusters[0], s)
	}
	shared, err := cursor.OpenShared(s.Log, s.RegistryRoot, cfg.Registry.FilePermissions, s.StoreName, time.Now())
	if err != nil {
		return err
	}
	defer shared.Close()
	claims := &claims{by: map[string]string{}}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, c := range clusters {
		cs := s
		cs.Log = s.Log.With("cluster_entry", c.Key())
		cs.Registry, cs.PerCluster = shared, true
		cs.Claim = func(name string) error { return claims.claim(name, c.ClusterLabel()) }
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := Run(ctx, c, cs); err != nil {
				cs.Log.Errorw("This cluster is not read: the others go on", "cluster_entry", c.ClusterLabel(), "error", err)
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", c.ClusterLabel(), err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) == len(clusters) {
		return errors.Join(errs...)
	}
	return nil
}

// claims are the clusters' names taken: two entries that reach one
// cluster (by two of its addresses) would read it twice.
type claims struct {
	mu sync.Mutex
	by map[string]string // cluster name -> the entry that reads it
}

// release gives up every cluster entry reads (a unit stopped).
func (c *claims) release(entry string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, e := range c.by {
		if e == entry {
			delete(c.by, name)
		}
	}
}

func (c *claims) claim(name, entry string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if other, ok := c.by[name]; ok && other != entry {
		return fmt.Errorf("%s is Teleport cluster %q, which %s reads already: each cluster is read once (listed once in teleportbeat.clusters, or one Teleport integration per cluster under Elastic Agent)", entry, name, other)
	}
	c.by[name] = entry
	return nil
}
