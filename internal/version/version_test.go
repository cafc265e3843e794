package version

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBuildFallsBackToGoVCSInformation(t *testing.T) {
	info := func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"},
		}}, true
	}
	c, b := build("", "", info)
	require.Equal(t, "abc123-dirty", c)
	require.Equal(t, "2026-12-01T10:00:00Z (commit time)", b)

	c, b = build("stamped", "2026-12-02T00:00:00Z", info)
	require.Equal(t, "stamped", c, "a stamped commit wins")
	require.Equal(t, "2026-12-02T00:00:00Z", b)

	c, b = build("", "", func() (*debug.BuildInfo, bool) { return &debug.BuildInfo{}, true })
	require.Equal(t, "unknown", c)
	require.Equal(t, "unknown", b)
}
