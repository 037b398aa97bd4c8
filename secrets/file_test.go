package secrets

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgsecure/pgsecure/internal/files"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stamp gives each write a distinct modification time, so the tests do not
// depend on the filesystem's timestamp granularity.
var stamp = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	stamp = stamp.Add(time.Second)
	require.NoError(t, os.Chtimes(path, stamp, stamp))
}

func TestFileDirectory(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir+"/username", "app\n")
	writeFile(t, dir+"/password", testSecret+"\r\n")
	writeFile(t, dir+"/host", "db.internal\n")
	writeFile(t, dir+"/port", " 6432\n")
	writeFile(t, dir+"/database", "appdb")
	c, err := File(dir).Credentials(t.Context())
	require.NoError(t, err)
	assert.Equal(t, Credentials{User: "app", Password: NewSecret(testSecret), Host: "db.internal", Port: 6432, Database: "appdb",
		Version: "1", Source: "file:" + dir}, c)
}

func TestFileDirectoryNameOptions(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir+"/login", "app")
	writeFile(t, dir+"/secret", testSecret)
	writeFile(t, dir+"/username", "ignored")
	c, err := File(dir, WithUserFile("login"), WithPasswordFile("secret")).Credentials(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "app", c.User)
	assert.Equal(t, testSecret, c.Password.Reveal())

	_, err = File(dir, WithUserFile("../etc/passwd")).Credentials(t.Context())
	require.ErrorIs(t, err, ErrInvalid)
	assert.Contains(t, err.Error(), "user_file is not a plain file name")
}

func TestFileDirectoryErrors(t *testing.T) {
	dir := t.TempDir()
	src := File(dir)
	_, err := src.Credentials(t.Context())
	require.ErrorIs(t, err, ErrNotFound)
	assert.Contains(t, err.Error(), "no username or user file")

	writeFile(t, dir+"/user", "app")
	_, err = src.Credentials(t.Context())
	require.ErrorIs(t, err, ErrNotFound)
	assert.Contains(t, err.Error(), "no password file")

	writeFile(t, dir+"/password", "\n")
	_, err = src.Credentials(t.Context())
	require.ErrorIs(t, err, ErrInvalid)
	assert.Contains(t, err.Error(), "password_file file is empty")

	writeFile(t, dir+"/password", testSecret)
	writeFile(t, dir+"/port", "http")
	_, err = src.Credentials(t.Context())
	require.ErrorIs(t, err, ErrInvalid)
	assert.Contains(t, err.Error(), "port file")

	_, err = File(dir + "/absent").Credentials(t.Context())
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorIs(t, err, os.ErrNotExist)

	_, err = File(dir + "/port/below-a-file").Credentials(t.Context())
	require.ErrorIs(t, err, ErrNotFound, "a path through a regular file does not exist")
}

func TestFileUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		// root reads files whatever their mode; a directory where a file is
		// expected is a misconfiguration.
		dir := t.TempDir()
		writeFile(t, dir+"/username", "app")
		require.NoError(t, os.Mkdir(dir+"/password", 0o700))
		_, err := File(dir).Credentials(t.Context())
		require.ErrorIs(t, err, ErrInvalid)
		assert.Contains(t, err.Error(), "password is not a regular file")
		return
	}
	path := filepath.Join(t.TempDir(), "db.json")
	writeFile(t, path, `{}`)
	require.NoError(t, os.Chmod(path, 0))
	_, err := File(path).Credentials(t.Context())
	require.ErrorIs(t, err, ErrUnavailable)
}

// k8sMount lays out a secret the way the kubelet does: files in a timestamped
// directory, "..data" pointing at it, and one symlink per key.
func k8sMount(t *testing.T, dir, generation string, files map[string]string) {
	t.Helper()
	for k, v := range files {
		writeFile(t, filepath.Join(dir, generation, k), v)
		_ = os.Symlink(filepath.Join("..data", k), filepath.Join(dir, k))
	}
	require.NoError(t, os.Symlink(generation, filepath.Join(dir, "..data_tmp")))
	require.NoError(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
}

func TestFileKubernetesRotation(t *testing.T) {
	dir := t.TempDir()
	k8sMount(t, dir, "..2030_01_01_1", map[string]string{"username": "app", "password": testSecret + "1"})
	src := File(dir)
	c1, err := src.Credentials(t.Context())
	require.NoError(t, err)
	assert.Equal(t, testSecret+"1", c1.Password.Reveal())

	k8sMount(t, dir, "..2030_01_01_2", map[string]string{"username": "app", "password": testSecret + "2"})
	c2, err := src.Credentials(t.Context())
	require.NoError(t, err)
	assert.Equal(t, testSecret+"2", c2.Password.Reveal())
	assert.NotEqual(t, c1.Version, c2.Version)
}

func TestFileJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db.json")
	writeFile(t, path, `{"username":"app","password":"`+testSecret+`","host":"db.example.com","port":5432,"dbname":"app","engine":"postgres"}`)
	c, err := File(path).Credentials(t.Context())
	require.NoError(t, err)
	assert.Equal(t, Credentials{User: "app", Password: NewSecret(testSecret), Host: "db.example.com", Port: 5432, Database: "app",
		Version: "1", Source: "file:" + path}, c)

	_, err = File(path, WithPasswordFile("pw")).Credentials(t.Context())
	require.ErrorIs(t, err, ErrInvalid, "name options need a directory")
}

func TestFileJSONRotationAndBrokenRewrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db.json")
	log, buf := logBuffer()
	src := File(path, WithLogger(log))
	doc := func(pw string) string { return `{"user":"app","password":"` + pw + `"}` }

	writeFile(t, path, doc(testSecret+"1"))
	c1, err := src.Credentials(t.Context())
	require.NoError(t, err)

	writeFile(t, path, doc(testSecret+"2"))
	c2, err := src.Credentials(t.Context())
	require.NoError(t, err)
	assert.Equal(t, testSecret+"2", c2.Password.Reveal(), "a rewrite is picked up")
	assert.NotEqual(t, c1.Version, c2.Version)

	writeFile(t, path, doc(testSecret+"2")) // touched, same content
	c, err := src.Credentials(t.Context())
	require.NoError(t, err)
	assert.Equal(t, c2.Version, c.Version, "same content, same version")

	writeFile(t, path, `{"user":"app","password":"`+testSecret) // caught mid-write
	for range 3 {
		c, err = src.Credentials(t.Context())
		require.NoError(t, err)
		assert.Equal(t, c2, c, "the last good credentials")
	}
	assert.Equal(t, 1, strings.Count(buf.String(), `"level":"WARN"`), "one warning: %s", buf)
	assert.Contains(t, buf.String(), "syntax error at byte offset")
	assert.NotContains(t, buf.String(), testSecret)

	writeFile(t, path, doc(testSecret+"3"))
	c3, err := src.Credentials(t.Context())
	require.NoError(t, err)
	assert.Equal(t, testSecret+"3", c3.Password.Reveal(), "recovers once the file is whole")
}

func TestFileBrokenWithoutLastGood(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db.json")
	writeFile(t, path, `{"username":"app","password":"`+testSecret+`",`)
	src := File(path)
	for range 2 {
		_, err := src.Credentials(t.Context())
		require.ErrorIs(t, err, ErrInvalid)
		assert.Contains(t, err.Error(), "file:"+path+": is not valid JSON")
		assert.NotContains(t, err.Error(), testSecret)
	}
}

func TestFileTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db.json")
	writeFile(t, path, strings.Repeat(" ", files.MaxSize+1))
	_, err := File(path).Credentials(t.Context())
	require.ErrorIs(t, err, ErrInvalid)
	assert.Contains(t, err.Error(), "is larger than")
}

func TestParseJSON(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     Credentials
	}{
		{"rds shape", `{"username":"app","password":"pw","engine":"postgres","host":"h","port":5432,"dbname":"d","dbInstanceIdentifier":"x"}`,
			Credentials{User: "app", Password: NewSecret("pw"), Host: "h", Port: 5432, Database: "d"}},
		{"aliases", `{"user":"app","password":"pw","database":"d"}`, Credentials{User: "app", Password: NewSecret("pw"), Database: "d"}},
		{"both aliases agree", `{"user":"app","username":"app","password":"pw"}`, Credentials{User: "app", Password: NewSecret("pw")}},
		{"port as string", `{"username":"app","password":"pw","port":"6432"}`, Credentials{User: "app", Password: NewSecret("pw"), Port: 6432}},
		{"empty port string", `{"username":"app","password":"pw","port":""}`, Credentials{User: "app", Password: NewSecret("pw")}},
		{"nulls", `{"username":"app","password":"pw","host":null,"port":null}`, Credentials{User: "app", Password: NewSecret("pw")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseJSON([]byte(tc.in))
			require.NoError(t, err)
			assert.Equal(t, tc.want, c)
		})
	}
}

func TestParseJSONErrors(t *testing.T) {
	pw := `"password":"` + testSecret + `"`
	for _, tc := range []struct{ name, in, says string }{
		{"syntax", `{"username":"app",` + pw + `,}`, "syntax error at byte offset"},
		{"bad escape in password", `{"username":"app","password":"` + testSecret + `\q"}`, "syntax error"},
		{"array", `[` + pw[11:] + `]`, "is not a JSON object"},
		{"string", pw[11:], "is not a JSON object"},
		{"null", `null`, "is not a JSON object"},
		{"empty", ``, "is not valid JSON"},
		{"no user", `{` + pw + `}`, `field "username" is missing`},
		{"no password", `{"username":"app"}`, `field "password" is missing`},
		{"empty password", `{"username":"app","password":""}`, `field "password" is missing or empty`},
		{"numeric password", `{"username":"app","password":12345678}`, `field "password" must be a JSON string`},
		{"aliases disagree", `{"username":"app","user":"other",` + pw + `}`, `fields "username" and "user" disagree`},
		{"port object", `{"username":"app",` + pw + `,"port":{}}`, `"port" must be a number or a string`},
		{"port fraction", `{"username":"app",` + pw + `,"port":5432.5}`, `"port" is not a port number`},
		{"port range", `{"username":"app",` + pw + `,"port":"70000"}`, `"port" is not a port number`},
		{"port is the password", `{"username":"app",` + pw + `,"port":"` + testSecret + `"}`, `"port" is not a port number`},
		{"host number", `{"username":"app",` + pw + `,"host":1}`, `"host" must be a JSON string`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseJSON([]byte(tc.in))
			require.ErrorIs(t, err, ErrInvalid)
			assert.Contains(t, err.Error(), tc.says)
			assert.True(t, strings.HasPrefix(err.Error(), "pgsecure: JSON secret: "), err.Error())
			assert.NotContains(t, err.Error(), testSecret)
		})
	}
}

// TestFileKubernetesDataSwap: Kubernetes updates a mounted secret by writing
// a new timestamped directory and swapping the "..data" symlink; the next
// call sees the new credentials even when the files keep size and time.
func TestFileKubernetesDataSwap(t *testing.T) {
	secret := testutil.NewKubeSecret(t, map[string]string{"username": "app", "password": testSecret + "A"})
	dir := secret.Dir
	src := File(dir)
	c, err := src.Credentials(t.Context())
	require.NoError(t, err)
	assert.Equal(t, testSecret+"A", c.Password.Reveal())

	secret.Update(t, map[string]string{"username": "app", "password": testSecret + "B"}) // same size and time
	c2, err := src.Credentials(t.Context())
	require.NoError(t, err)
	assert.Equal(t, testSecret+"B", c2.Password.Reveal(), "the swap is seen by the next call")
	assert.NotEqual(t, c.Version, c2.Version)
	_, cached := Cached(src, CacheOptions{}).(*Cache)
	assert.False(t, cached, "a file source is not wrapped in a cache that would delay the rotation")
	assert.True(t, src.(Rotator).Rotates())
}

// TestFileWaitsForRotationAfterRejection: the database password changed
// before the mounted secret; after Invalidate the next call waits for the
// rewrite instead of handing back the rejected password at once.
func TestFileWaitsForRotationAfterRejection(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir+"/username", "app")
	writeFile(t, dir+"/password", testSecret+"A")
	src := File(dir)
	old, err := src.Credentials(t.Context())
	require.NoError(t, err)
	src.(Invalidator).Invalidate(old)
	go func() {
		time.Sleep(100 * time.Millisecond) // the secret is updated while the source backs off
		assert.NoError(t, os.WriteFile(dir+"/password", []byte(testSecret+"B2"), 0o600))
	}()
	c, err := src.Credentials(t.Context())
	require.NoError(t, err)
	assert.Equal(t, testSecret+"B2", c.Password.Reveal(), "the rotated password, not the rejected one")

	src.(Invalidator).Invalidate(c)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	again, err := src.Credentials(ctx)
	require.NoError(t, err, "no rotation comes: the caller's deadline ends the wait, the database decides")
	assert.Equal(t, c.Version, again.Version)
}
