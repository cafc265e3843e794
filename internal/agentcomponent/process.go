package agentcomponent

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of /proc/<pid>/stat's start time: USER_HZ, 100 on
// every Linux architecture the agent runs on.
const userHZ = 100

// AgentStarted returns when the oldest process running the home's
// elastic-agent binary started, read from procRoot (/proc); ok is false
// when none runs. The agent reads its components directory when it
// starts: one started before teleportbeat was placed does not know it.
func AgentStarted(procRoot string, h Home) (started time.Time, ok bool, err error) {
	bin := filepath.Join(h.Dir, "elastic-agent")
	if real, err := filepath.EvalSymlinks(bin); err == nil {
		bin = real
	}
	boot, err := bootTime(procRoot)
	if err != nil {
		return time.Time{}, false, err
	}
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return time.Time{}, false, err
	}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join(procRoot, e.Name(), "exe"))
		if err != nil || strings.TrimSuffix(exe, " (deleted)") != bin {
			continue
		}
		ticks, err := startTicks(filepath.Join(procRoot, e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		t := boot.Add(time.Duration(ticks) * time.Second / userHZ)
		if !ok || t.Before(started) {
			started, ok = t, true
		}
	}
	return started, ok, nil
}

// bootTime is /proc/stat's btime.
func bootTime(procRoot string) (time.Time, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, "stat"))
	if err != nil {
		return time.Time{}, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("%s: btime %q: %w", filepath.Join(procRoot, "stat"), v, err)
			}
			return time.Unix(n, 0), nil
		}
	}
	return time.Time{}, fmt.Errorf("%s has no btime", filepath.Join(procRoot, "stat"))
}

// startTicks is field 22 of /proc/<pid>/stat (starttime), counted after
// the command name, which may hold spaces and parentheses.
func startTicks(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("%s: no command name", path)
	}
	fields := strings.Fields(s[i+1:])
	// fields[0] is field 3 (state); starttime is field 22.
	if len(fields) < 20 {
		return 0, fmt.Errorf("%s: %d fields", path, len(fields)+2)
	}
	return strconv.ParseInt(fields[19], 10, 64)
}
