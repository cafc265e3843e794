package agentcomponent

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Status of a finding, as `teleportbeat test` prints them.
const (
	OK    = "OK"
	Warn  = "WARN"
	Error = "ERROR"
)

// Finding is one check of a home.
type Finding struct {
	Check  string
	Status string
	Detail string
}

// RestartCommand is what makes a running agent read its components again.
const RestartCommand = "sudo systemctl restart elastic-agent"

// InputType is the input teleportbeat's spec declares.
const InputType = "teleport"

// Check reports whether the home's agent can start teleportbeat: its
// version, the binary (the agent's permission rules, and that it runs and
// is version want), the spec (loads, declares the teleport input for this
// platform, and the whole directory loads as the agent loads it), and, for
// the active home, whether the running agent started after teleportbeat was
// placed.
func Check(ctx context.Context, h Home, want, procRoot string) []Finding {
	var out []Finding
	add := func(check, status, format string, a ...any) {
		out = append(out, Finding{check, status, fmt.Sprintf(format, a...)})
	}
	if err := h.Compatible(); err != nil {
		add("agent version", Error, "%v", err)
		return out
	}
	add("agent version", OK, "%s (8.13 or newer)", h.Version)

	dir := h.Components()
	info, err := os.Stat(dir)
	if err != nil {
		add("components", Error, "%v", err)
		return out
	}
	agentUID, _ := owner(info)
	bin, specPath := filepath.Join(dir, Name), filepath.Join(dir, SpecName)
	if _, err := os.Stat(bin); err != nil {
		add("binary", Error, "%s is not there: run `sudo teleportbeat agent install`", bin)
		return out
	}
	if err := strictExec(bin, agentUID); err != nil {
		add("binary", Error, "%s: %v (the agent refuses to run it: `execution of component prevented: %v`); run `sudo teleportbeat agent install`", bin, err, err)
	} else {
		add("binary", OK, "%s", bin)
	}
	runCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ver, err := exec.CommandContext(runCtx, bin, "version").Output()
	line := strings.TrimSpace(strings.SplitN(string(ver), "\n", 2)[0])
	switch {
	case err != nil:
		add("runs", Error, "%s version: %v", bin, err)
	case want != "" && !strings.Contains(line, " "+want+" ") && !strings.HasSuffix(line, " "+want):
		add("runs", Warn, "%s; this teleportbeat is %s: run `sudo teleportbeat agent install` to place it", line, want)
	default:
		add("runs", OK, "%s", line)
	}

	data, err := os.ReadFile(specPath)
	if err != nil {
		add("spec", Error, "%s is not there: the agent does not know teleportbeat; run `sudo teleportbeat agent install`", specPath)
		return out
	}
	s, err := LoadSpec(data)
	if err != nil {
		add("spec", Error, "%s: %v", specPath, err)
		return out
	}
	declared := false
	for _, in := range s.Inputs {
		for _, p := range hostPlatforms() {
			declared = declared || (in.Name == InputType && slices.Contains(in.Platforms, p))
		}
	}
	if !declared {
		add("spec", Error, "%s does not declare the %s input for %s", specPath, InputType, strings.Join(hostPlatforms(), " or "))
	} else if err := loadable(dir); err != nil {
		add("spec", Error, "the agent would not start with this components directory: %v", err)
	} else {
		add("spec", OK, "input %s for %s", InputType, hostPlatforms()[0])
	}

	if !h.Active {
		return out
	}
	placed, _ := os.Stat(specPath)
	started, running, err := AgentStarted(procRoot, h)
	switch {
	case err != nil:
		add("agent process", Warn, "cannot tell whether Elastic Agent runs: %v", err)
	case !running:
		add("agent process", Warn, "no Elastic Agent runs from %s", h.Dir)
	case started.Before(placed.ModTime()):
		add("agent process", Warn, "Elastic Agent has run since %s, before teleportbeat was placed (%s); it reads its components when it starts: %s",
			started.UTC().Format(time.RFC3339), placed.ModTime().UTC().Format(time.RFC3339), RestartCommand)
	default:
		add("agent process", OK, "Elastic Agent started %s, after teleportbeat was placed", started.UTC().Format(time.RFC3339))
	}
	return out
}
