package config

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/elastic/go-ucfg"

	conf "github.com/elastic/elastic-agent-libs/config"
)

// ClusterSettings are the settings one Teleport cluster has: an entry of
// teleportbeat.clusters may set these, and takes every other value (and
// the defaults of these) from the teleportbeat section around it.
type ClusterSettings struct {
	Teleport Teleport `config:"teleport"`
	Audit    Audit    `config:"audit"`
	Sessions Sessions `config:"sessions"`
	Lock     Lock     `config:"lock"`
	Respond  Respond  `config:"respond"`
}

// Clusters are the clusters to read, each with its whole configuration:
// the entries of teleportbeat.clusters, or this configuration alone (the
// one-cluster form).
func (c Config) Clusters() []Config {
	if len(c.clusters) == 0 {
		return []Config{c}
	}
	return c.clusters
}

// Key is where a cluster's settings are in teleportbeat.yml: "" for the
// one-cluster form, "teleportbeat.clusters.N" for an entry.
func (c Config) Key() string { return c.key }

// loadClusters reads teleportbeat.clusters, when set: each entry merged
// over the rest of the section, checked on its own, errors naming the
// entry's keys. It reports whether the section has the list.
func (c *Config) loadClusters(section *conf.C) (bool, error) {
	if !section.HasField("clusters") {
		return false, nil
	}
	var list struct {
		Clusters []*conf.C `config:"clusters"`
	}
	if err := section.Unpack(&list); err != nil {
		return true, fmt.Errorf("%s: %w", key("clusters"), err)
	}
	if len(list.Clusters) == 0 {
		return true, fmt.Errorf("%s: is empty: list one entry per Teleport cluster (with its teleport.addr and credentials), or remove it and set teleportbeat.teleport for one cluster", key("clusters"))
	}
	base := conf.NewConfig()
	if err := base.Merge(section); err != nil {
		return true, err
	}
	if _, err := base.Remove("clusters", -1); err != nil {
		return true, fmt.Errorf("%s: %w", key("clusters"), err)
	}
	var errs []error
	for i, entry := range list.Clusters {
		prefix := fmt.Sprintf("%s.%d", key("clusters"), i)
		cc, err := loadCluster(base, entry, prefix)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cc.key = prefix
		c.Warnings = append(c.Warnings, cc.Warnings...)
		c.clusters = append(c.clusters, cc)
	}
	if err := errors.Join(errs...); err != nil {
		return true, err
	}
	return true, sameClusterTwice(c.clusters)
}

// loadCluster is one entry merged over base.
func loadCluster(base, entry *conf.C, prefix string) (Config, error) {
	cfg := Default()
	if entry == nil {
		entry = conf.NewConfig()
	}
	if err := CheckKeys(entry, ClusterSettings{}, prefix); err != nil {
		return cfg, err
	}
	merged := conf.NewConfig()
	if err := merged.Merge(base); err != nil {
		return cfg, err
	}
	// An entry's list (addr, exclude_event_types) replaces the section's.
	if err := merged.MergeWithOpts(entry, ucfg.ReplaceArrValues); err != nil {
		return cfg, fmt.Errorf("%s: %w", prefix, err)
	}
	if err := merged.Unpack(&cfg); err != nil {
		return cfg, fmt.Errorf("%s: %w", prefix, err)
	}
	cfg.MemoryLimitSet = base.HasField("memory_limit")
	if err := cfg.check(); err != nil {
		return cfg, errors.New(entryKeys(err.Error(), prefix))
	}
	return cfg, nil
}

// clusterKeyRE finds the per-cluster keys in check's messages.
var clusterKeyRE = regexp.MustCompile(`\bteleportbeat\.(teleport|audit|sessions|lock|respond)\b`)

// entryKeys names the entry's keys in check's messages.
func entryKeys(msg, prefix string) string {
	return clusterKeyRE.ReplaceAllString(msg, prefix+".$1")
}

// sameClusterTwice refuses two entries that name the same address: one
// cluster read twice would ship every event twice over two positions.
// (Two addresses of one cluster are told apart once connected: the
// cluster's name, input.Claims.)
func sameClusterTwice(cs []Config) error {
	for i := range cs {
		for j := 0; j < i; j++ {
			for _, a := range cs[i].Teleport.Addr {
				if slices.Contains(cs[j].Teleport.Addr, a) {
					return fmt.Errorf("%s.teleport.addr: %s is also in %s.teleport.addr: each Teleport cluster is listed once in teleportbeat.clusters (a copied entry?)", cs[i].key, a, cs[j].key)
				}
			}
		}
	}
	return nil
}

// ClusterLabel is how logs name a cluster before it is connected: its
// entry and first address.
func (c Config) ClusterLabel() string {
	addr := strings.Join(c.Teleport.Addr, ",")
	if c.key == "" {
		return addr
	}
	return c.key + " (" + addr + ")"
}
