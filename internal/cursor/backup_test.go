package cursor

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/elastic/elastic-agent-libs/logp"
	"github.com/stretchr/testify/require"
)

func TestBackupKeepsThePositionAndTheAttachment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dir", "k.state")
	require.NoError(t, SaveBackup(path, []byte(`{"window_start":"x"}`), []byte("attached"), 0o600))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	pos, att, err := LoadBackup(path)
	require.NoError(t, err)
	require.Equal(t, `{"window_start":"x"}`, string(pos))
	require.Equal(t, "attached", string(att))

	pos, att, err = LoadBackup(filepath.Join(t.TempDir(), "none"))
	require.NoError(t, err)
	require.Nil(t, pos)
	require.Nil(t, att)
}

func TestBackupRefusesACorruptFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	require.NoError(t, SaveBackup(path, []byte(`{}`), []byte("attached"), 0o600))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	for name, bad := range map[string][]byte{
		"flipped byte":   func() []byte { b := append([]byte(nil), data...); b[len(backupMagic)+6] ^= 0xff; return b }(),
		"truncated":      data[:len(data)-9],
		"not ours":       []byte("{\"registry\": true}\n"),
		"length too big": withCRC(append([]byte(backupMagic), 0xff, 0xff, 0, 0, '{', '}')),
	} {
		require.NoError(t, os.WriteFile(path, bad, 0o600))
		_, _, err := LoadBackup(path)
		require.ErrorIs(t, err, ErrCorruptBackup, name)
	}
}

// TestBackupSaverWritesAtMostEveryPeriodAndAtTheEnd: positions in quick
// succession write the file once, the final one always; the attachment is
// taken at each write.
func TestBackupSaverWritesAtMostEveryPeriodAndAtTheEnd(t *testing.T) {
	log, logs := logp.NewInMemoryLocal("", logp.ConsoleEncoderConfig())
	path := filepath.Join(t.TempDir(), "k.state")
	n := 0
	save := BackupSaver(log, path, 0o600, time.Hour, func() []byte { n++; return []byte{byte(n)} })
	save(&Position{StartKey: "a"}, false)
	save(&Position{StartKey: "b"}, false)
	pos, att, err := LoadBackup(path)
	require.NoError(t, err)
	require.Contains(t, string(pos), `"a"`, "the second came within the period")
	require.Equal(t, []byte{1}, att)
	save(&Position{StartKey: "c"}, true)
	pos, att, err = LoadBackup(path)
	require.NoError(t, err)
	require.Contains(t, string(pos), `"c"`)
	require.Equal(t, []byte{2}, att)

	// A failing write is said once, and its end.
	require.NoError(t, os.Remove(path))
	require.NoError(t, os.Mkdir(path, 0o700)) // a directory where the file goes
	save(&Position{StartKey: "d"}, true)
	save(&Position{StartKey: "e"}, true)
	require.Equal(t, 1, strings.Count(logs.String(), "Cannot write the position backup file"))
	require.NoError(t, os.Remove(path))
	save(&Position{StartKey: "f"}, true)
	require.Contains(t, logs.String(), "The position backup file is written again")
}

// withCRC appends the checksum LoadBackup checks.
func withCRC(b []byte) []byte {
	return binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}
