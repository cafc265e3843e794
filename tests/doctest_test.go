package tests

// Executable documentation: the command blocks of README.md and docs/ are
// run as written, so that a documented command cannot drift from what
// works. A block is marked by an HTML comment on the line before its
// fence (invisible on GitHub):
//
//	<!-- doctest: run -->            every command line, in order, must succeed;
//	                                 `teleportbeat run` runs until the scenario's
//	                                 condition holds, then gets SIGTERM and must
//	                                 exit 0. dir=repo runs in the repository.
//	<!-- doctest: output -->         the output of the run block before it holds
//	                                 these lines, in order.
//	<!-- doctest: transcript -->     `$ command` lines followed by the lines their
//	                                 output holds (exit status not checked);
//	                                 append="key: value" adds to teleportbeat.yml
//	                                 for that block only (\n between lines).
//	<!-- doctest: config -->         becomes teleportbeat.yml.
//	<!-- doctest: check-config -->   merged into teleportbeat.yml (replacing its
//	                                 output when it names another one), must
//	                                 pass `teleportbeat test config`.
//	<!-- doctest: role -->           a Teleport role: accepted by every Teleport
//	                                 version of the support matrix, with the
//	                                 permissions teleportbeat needs.
//
// In expected output, "..." stands for anything, <name> for one word, and
// a run of spaces for any run of spaces; a documented line matches the end
// of an output line (a log prefix may come before it). The scenario replaces the example
// hosts and paths (teleport.example.com:443, /etc/teleportbeat/, ...) with
// the Teleport double, the recording Elasticsearch and Kibana, and a home
// directory laid out like the archive (binary and teleportbeat.yml side by
// side), in commands, files and expected output alike.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v2"

	"github.com/elastic/elastic-agent-libs/config"
)

// docBlock is a marked fenced block.
type docBlock struct {
	file string
	line int // of the fence
	kind string
	opts map[string]string
	lang string
	body string
}

func (b docBlock) String() string { return fmt.Sprintf("%s:%d (doctest: %s)", b.file, b.line, b.kind) }

var (
	markerRE = regexp.MustCompile(`^\s*<!--\s*doctest:\s*([a-z-]+)(.*?)-->\s*$`)
	optRE    = regexp.MustCompile(`(\w+)=(?:"([^"]*)"|(\S+))`)
	fenceRE  = regexp.MustCompile("^(\\s*)```\\s*(\\S*)\\s*$")
)

var docKinds = map[string]bool{"run": true, "output": true, "transcript": true, "config": true, "check-config": true, "role": true}

// parseDoc returns the marked blocks of a Markdown file, in order. A
// marker not followed by a fenced block, or of an unknown kind, is an
// error: a typo must not turn a check off.
func parseDoc(name, text string) ([]docBlock, error) {
	lines := strings.Split(text, "\n")
	var out []docBlock
	for i := 0; i < len(lines); i++ {
		m := markerRE.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		b := docBlock{file: name, kind: m[1], opts: map[string]string{}}
		if !docKinds[b.kind] {
			return nil, fmt.Errorf("%s:%d: unknown doctest kind %q", name, i+1, b.kind)
		}
		for _, o := range optRE.FindAllStringSubmatch(m[2], -1) {
			b.opts[o[1]] = o[2] + o[3]
		}
		j := i + 1
		for j < len(lines) && strings.TrimSpace(lines[j]) == "" {
			j++
		}
		f := fenceRE.FindStringSubmatch(lines[min(j, len(lines)-1)])
		if j >= len(lines) || f == nil {
			return nil, fmt.Errorf("%s:%d: doctest marker not followed by a fenced block", name, i+1)
		}
		indent := f[1]
		b.lang, b.line = f[2], j+1
		var body []string
		for j++; ; j++ {
			if j >= len(lines) {
				return nil, fmt.Errorf("%s:%d: fenced block not closed", name, b.line)
			}
			if strings.TrimSpace(lines[j]) == "```" {
				break
			}
			body = append(body, strings.TrimPrefix(lines[j], indent))
		}
		b.body = strings.Join(body, "\n") + "\n"
		out = append(out, b)
		i = j
	}
	return out, nil
}

// linePattern turns a documented output line into a regular expression.
func linePattern(line string) *regexp.Regexp {
	var re strings.Builder
	rest := strings.TrimSpace(line)
	word := regexp.MustCompile(`^<[A-Za-z0-9_. -]+>`)
	space := regexp.MustCompile(`^\s+`)
	for rest != "" {
		switch {
		case strings.HasPrefix(rest, "..."):
			re.WriteString(".*")
			rest = rest[3:]
		case word.MatchString(rest):
			re.WriteString(`\S+`)
			rest = rest[len(word.FindString(rest)):]
		case space.MatchString(rest):
			re.WriteString(`\s+`)
			rest = rest[len(space.FindString(rest)):]
		default:
			re.WriteString(regexp.QuoteMeta(rest[:1]))
			rest = rest[1:]
		}
	}
	// The end is anchored, so that a line cut short in the docs says so
	// with "...".
	return regexp.MustCompile(re.String() + `\s*$`)
}

// matchOutput checks that every non-blank line of want matches a line of
// got, in order.
func matchOutput(want, got string) error {
	gotLines := strings.Split(got, "\n")
	at := 0
	for _, w := range strings.Split(want, "\n") {
		if strings.TrimSpace(w) == "" {
			continue
		}
		re := linePattern(w)
		found := false
		for ; at < len(gotLines); at++ {
			if re.MatchString(gotLines[at]) {
				found, at = true, at+1
				break
			}
		}
		if !found {
			return fmt.Errorf("documented line %q is not in the output (in order)", strings.TrimSpace(w))
		}
	}
	return nil
}

// commandLines splits a shell block into commands: continuation lines
// joined, blank and comment lines left out.
func commandLines(body string) []string {
	var out []string
	var cur strings.Builder
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		l := sc.Text()
		if cur.Len() == 0 && (strings.TrimSpace(l) == "" || strings.HasPrefix(strings.TrimSpace(l), "#")) {
			continue
		}
		if s, ok := strings.CutSuffix(l, `\`); ok {
			cur.WriteString(s)
			continue
		}
		cur.WriteString(l)
		out = append(out, strings.TrimSpace(cur.String()))
		cur.Reset()
	}
	return out
}

var beatRunRE = regexp.MustCompile(`^(\w+=\S+\s+)*(\./)?teleportbeat\s+run\b`)

// docScenario runs the marked blocks of one document in order.
type docScenario struct {
	t     *testing.T
	home  string            // teleportbeat and teleportbeat.yml, side by side
	subst []string          // old, new, ... applied to commands, files and expected output
	env   []string          // added to the commands' environment
	until func() error      // when a `teleportbeat run` has done its job (nil: done)
	roles func(string) bool // whether a role version is accepted by every supported Teleport
	out   string            // the output of the last run block
}

func (s *docScenario) replace(text string) string {
	return strings.NewReplacer(s.subst...).Replace(text)
}

func (s *docScenario) cfgPath() string { return filepath.Join(s.home, "teleportbeat.yml") }

func (s *docScenario) command(ctx context.Context, dir, line string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "bash", "-c", line)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "PATH="+s.home+string(os.PathListSeparator)+os.Getenv("PATH")), s.env...)
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

func (s *docScenario) runAll(blocks []docBlock) {
	for _, b := range blocks {
		ok := s.t.Run(fmt.Sprintf("%s:%d_%s", filepath.Base(b.file), b.line, b.kind), func(t *testing.T) {
			s.runBlock(t, b)
		})
		if !ok {
			return // later blocks build on this one
		}
	}
}

func (s *docScenario) runBlock(t *testing.T, b docBlock) {
	switch b.kind {
	case "config":
		require.NoError(t, os.WriteFile(s.cfgPath(), []byte(s.replace(b.body)), 0o600))
	case "run":
		dir := s.home
		if b.opts["dir"] == "repo" {
			dir = repoRoot
		}
		var all strings.Builder
		for _, line := range commandLines(b.body) {
			line = s.replace(line)
			all.WriteString(s.runLine(t, b, dir, line))
		}
		s.out = all.String()
	case "output":
		require.NoError(t, matchOutput(s.replace(b.body), s.out), "%s: the commands before said:\n%s", b, s.out)
	case "transcript":
		s.transcript(t, b)
	case "check-config":
		s.checkConfig(t, b)
	case "role":
		s.checkRole(t, b)
	}
}

// runLine runs one documented command; `teleportbeat run` until the
// scenario's condition holds.
func (s *docScenario) runLine(t *testing.T, b docBlock, dir, line string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if !beatRunRE.MatchString(line) {
		out, err := s.command(ctx, dir, line).CombinedOutput()
		require.NoError(t, err, "%s: `%s` failed:\n%s", b, line, out)
		return string(out)
	}
	logs := &syncBuffer{}
	cmd := s.command(ctx, dir, "exec "+line)
	cmd.Stdout, cmd.Stderr = logs, logs
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		err := error(nil)
		if s.until != nil {
			err = s.until()
		}
		if err == nil && strings.Contains(logs.String(), "Reading the Teleport audit log") {
			break
		}
		select {
		case werr := <-exited:
			t.Fatalf("%s: `%s` exited before its job was done (%v):\n%s", b, line, werr, tail(logs.String(), 8000))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("%s: `%s` did not get its job done in 3 minutes (%v):\n%s", b, line, err, tail(logs.String(), 8000))
		}
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, <-exited, "%s: `%s` stopped by SIGTERM:\n%s", b, line, tail(logs.String(), 8000))
	return logs.String()
}

func (s *docScenario) transcript(t *testing.T, b docBlock) {
	if extra, ok := b.opts["append"]; ok {
		extra = strings.ReplaceAll(extra, `\n`, "\n")
		before, err := os.ReadFile(s.cfgPath())
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(s.cfgPath(), append(append([]byte{}, before...), []byte("\n"+extra+"\n")...), 0o600))
		defer func() { require.NoError(t, os.WriteFile(s.cfgPath(), before, 0o600)) }()
	}
	var cmd string
	var want strings.Builder
	check := func() {
		if cmd == "" {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, _ := s.command(ctx, s.home, s.replace(cmd)).CombinedOutput()
		require.NoError(t, matchOutput(s.replace(want.String()), string(out)), "%s: `%s` said:\n%s", b, cmd, out)
	}
	for _, l := range strings.Split(b.body, "\n") {
		if c, ok := strings.CutPrefix(l, "$ "); ok {
			check()
			cmd = c
			want.Reset()
			continue
		}
		want.WriteString(l + "\n")
	}
	require.NotEmpty(t, cmd, "%s: no `$ command` line", b)
	check()
}

// checkConfig merges a documented snippet into teleportbeat.yml and runs
// `teleportbeat test config` on the result.
func (s *docScenario) checkConfig(t *testing.T, b docBlock) {
	current, err := os.ReadFile(s.cfgPath())
	require.NoError(t, err)
	base, err := config.NewConfigWithYAML(current, s.cfgPath())
	require.NoError(t, err)
	snippet, err := config.NewConfigWithYAML([]byte(s.replace(b.body)), b.String())
	require.NoError(t, err, "%s is not YAML", b)
	// A snippet of another output replaces the output; one that adds
	// settings to the same output is merged into it.
	if sOut, err := snippet.Child("output", -1); err == nil {
		bOut, err := base.Child("output", -1)
		if err != nil || !bOut.HasField(sOut.GetFields()[0]) {
			_, err := base.Remove("output", -1)
			require.NoError(t, err)
		}
	}
	require.NoError(t, base.Merge(snippet))
	var merged map[string]any
	require.NoError(t, base.Unpack(&merged))
	text, err := yaml.Marshal(merged)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "snippet.yml")
	require.NoError(t, os.WriteFile(path, text, 0o600))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := s.command(ctx, s.home, "teleportbeat test config -c "+path).CombinedOutput()
	require.NoError(t, err, "%s: `teleportbeat test config` refuses the documented snippet:\n%s\n%s", b, out, text)
	require.Contains(t, string(out), "Config OK")
}

// checkRole checks a documented Teleport role.
func (s *docScenario) checkRole(t *testing.T, b docBlock) {
	var role struct {
		Kind    string `yaml:"kind"`
		Version string `yaml:"version"`
		Spec    struct {
			Allow struct {
				Rules []struct {
					Resources []string `yaml:"resources"`
					Verbs     []string `yaml:"verbs"`
				} `yaml:"rules"`
			} `yaml:"allow"`
		} `yaml:"spec"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(b.body), &role), "%s", b)
	require.Equal(t, "role", role.Kind, "%s", b)
	require.True(t, s.roles(role.Version), "%s: role version %q is refused by a supported Teleport version", b, role.Version)
	granted := map[string]bool{}
	for _, r := range role.Spec.Allow.Rules {
		for _, res := range r.Resources {
			for _, v := range r.Verbs {
				granted[res+"/"+v] = true
			}
		}
	}
	for _, need := range []string{"event/list", "event/read", "session/list", "session/read"} {
		require.True(t, granted[need], "%s: the role lacks %s", b, need)
	}
}

func TestDocPatterns(t *testing.T) {
	require.NoError(t, matchOutput("==> Done: 3 events\n   events:   .../events/teleport-audit-<date>.ndjson\n",
		"noise\n==> Done: 3 events\n   events:   /tmp/x/events/teleport-audit-20261202.ndjson\n"))
	require.Error(t, matchOutput("==> Done: 3 events\n", "==> Done: 4 events\n"), "a number is not a placeholder")
	require.Error(t, matchOutput("b\na\n", "a\nb\n"), "in order")
	require.NoError(t, matchOutput("credentials...   OK <path>", "credentials... OK /x/identity"), "columns may be aligned differently")
	require.Error(t, matchOutput("OK <word>", "OK two words"), "<name> is one word")

	blocks, err := parseDoc("x.md", "text\n<!-- doctest: run dir=repo -->\n```sh\necho a \\\n  b\n# comment\n\necho c\n```\n  <!-- doctest: transcript append=\"a: b\" -->\n  ```\n  $ x\n  y\n  ```\n")
	require.NoError(t, err)
	require.Len(t, blocks, 2)
	require.Equal(t, "repo", blocks[0].opts["dir"])
	require.Equal(t, []string{"echo a   b", "echo c"}, commandLines(blocks[0].body))
	require.Equal(t, "a: b", blocks[1].opts["append"])
	require.Equal(t, "$ x\ny\n", blocks[1].body)

	_, err = parseDoc("x.md", "<!-- doctest: rnu -->\n```\nx\n```\n")
	require.ErrorContains(t, err, `unknown doctest kind "rnu"`)
	_, err = parseDoc("x.md", "<!-- doctest: run -->\ntext\n```\nx\n```\n")
	require.ErrorContains(t, err, "not followed by a fenced block")
}
