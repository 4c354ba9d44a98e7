package pki

import (
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func newCA(t *testing.T) CA {
	t.Helper()
	ca := CA{Dir: t.TempDir()}
	if _, err := ca.Ensure(); err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestRequestValidate(t *testing.T) {
	cases := []struct {
		name string
		r    Request
		want string // part of the error; "" = valid
	}{
		{"1 node", NodeRequest("n1", "10.213.0.11"), ""},
		{"2 client", ClientRequest(WorkerClient), ""},
		{"3 shell in the name", Request{CommonName: "n1;id", Usage: Client}, `common name "n1;id"`},
		{"4 newline in a DNS name", Request{CommonName: "n1", DNS: []string{"n1\nx"}, Usage: Server}, "DNS name"},
		{"5 bad IP", Request{CommonName: "n1", IPs: []string{"10.0.0.300"}, Usage: Server}, `"10.0.0.300" is not an IP`},
		{"6 no usage", Request{CommonName: "n1", DNS: []string{"n1"}}, "usage"},
		{"7 server with no name", Request{CommonName: "n1", Usage: Server}, "names no address"},
	}
	for _, c := range cases {
		err := c.r.Validate()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
}

func TestCheckVerdicts(t *testing.T) {
	ca := newCA(t)
	other := newCA(t)
	r := NodeRequest("n1", "10.213.0.11")
	now := time.Now()
	good, err := ca.Issue(r)
	if err != nil {
		t.Fatal(err)
	}
	foreign, _ := other.Issue(r)
	short, _ := ca.Issue(Request{CommonName: "n1", IPs: r.IPs, DNS: r.DNS, Usage: r.Usage, Validity: 10 * 24 * time.Hour})
	client, _ := ca.Issue(Request{CommonName: "n1", IPs: r.IPs, DNS: r.DNS, Usage: Client})
	cases := []struct {
		name  string
		cert  []byte
		r     Request
		valid bool
		why   string
	}{
		{"1 fresh", good.Cert, r, true, "valid until"},
		{"2 none", nil, r, false, "no certificate"},
		{"3 another CA", foreign.Cert, r, false, "not a valid certificate of this deployment's CA"},
		{"4 close to expiry", short.Cert, r, false, "renewing"},
		{"5 address changed", good.Cert, NodeRequest("n1", "10.213.0.12"), false, "does not name 10.213.0.12"},
		{"6 renamed", good.Cert, NodeRequest("n2", "10.213.0.11"), false, `issued to "n1"`},
		{"7 client-only for a server", client.Cert, r, false, "lacks a usage"},
		{"8 garbage", []byte("not pem"), r, false, "does not parse"},
	}
	for _, c := range cases {
		v := ca.Check(c.cert, c.r, now)
		if v.Valid != c.valid || !strings.Contains(v.Reason, c.why) {
			t.Errorf("%s: got %+v, want valid=%v and %q", c.name, v, c.valid, c.why)
		}
	}
}

func TestEnsurePairIdempotentAndRenews(t *testing.T) {
	ca := newCA(t)
	now := time.Now()
	files, changed, err := ca.EnsureClient(WorkerClient, now)
	if err != nil || !changed {
		t.Fatalf("first: changed=%v err=%v", changed, err)
	}
	if fi, err := os.Stat(files.Key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode: %v %v", fi.Mode(), err)
	}
	if _, changed, err = ca.EnsureClient(WorkerClient, now); err != nil || changed {
		t.Fatalf("second: changed=%v err=%v", changed, err)
	}
	// A year on, the certificate is within RenewBefore of its end: a rerun renews it.
	if _, changed, err = ca.EnsureClient(WorkerClient, now.Add(DefaultValidity-RenewBefore/2)); err != nil || !changed {
		t.Fatalf("renewal: changed=%v err=%v", changed, err)
	}
}

// A server from Server(VerifyClientCertIfGiven) sees verified chains for a client with a
// certificate of the CA, none without one, and refuses one from another CA; a client's
// HTTPTransport refuses a server of another CA, and with zero Files any https server.
func TestHandshakes(t *testing.T) {
	ca, other := newCA(t), newCA(t)
	dir := t.TempDir()
	write := func(ca CA, name string, r Request) Files {
		f := Files{CA: filepath.Join(ca.Dir, "ca.crt"), Cert: filepath.Join(dir, name+".crt"), Key: filepath.Join(dir, name+".key")}
		if _, err := ca.EnsurePair(r, f.Cert, f.Key, time.Now()); err != nil {
			t.Fatal(err)
		}
		return f
	}
	srvFiles := write(ca, "srv", NodeRequest("n1", "127.0.0.1"))
	good := write(ca, "good", ClientRequest("pigwf-cli"))
	bad := write(other, "bad", ClientRequest("pigwf-cli"))
	srvCfg, err := srvFiles.Server(tls.VerifyClientCertIfGiven)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srvCfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.VerifiedChains) > 0 {
			io.WriteString(w, "verified "+r.TLS.VerifiedChains[0][0].Subject.CommonName)
			return
		}
		io.WriteString(w, "anonymous")
	}), ErrorLog: log.New(io.Discard, "", 0)}
	go srv.Serve(ln)
	defer srv.Close()
	url := "https://" + ln.Addr().String()
	get := func(f Files) (string, error) {
		tr, err := f.HTTPTransport()
		if err != nil {
			return "", err
		}
		c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
		resp, err := c.Get(url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	if got, err := get(good); err != nil || got != "verified pigwf-cli" {
		t.Errorf("client of the CA: %q %v", got, err)
	}
	if got, err := get(Files{CA: good.CA}); err != nil || got != "anonymous" {
		t.Errorf("client without a certificate: %q %v", got, err)
	}
	if _, err := get(Files{CA: bad.CA, Cert: good.Cert, Key: good.Key}); err == nil {
		t.Error("a client trusting another CA accepted the server")
	}
	if got, err := get(Files{CA: good.CA, Cert: bad.Cert, Key: bad.Key}); err == nil {
		t.Errorf("the server accepted a certificate of another CA: %q", got)
	}
	// A plain-text caller's transport trusts no root: https is refused, even when the system's
	// roots (SSL_CERT_FILE, read once per process: no test before this one reads them) hold the CA.
	t.Setenv("SSL_CERT_FILE", good.CA)
	if got, err := get(Files{}); err == nil {
		t.Errorf("a transport of zero Files accepted an https server: %q", got)
	}
	if _, err := (Files{Cert: good.Cert, Key: good.Key}).HTTPTransport(); !errors.Is(err, ErrNoCA) {
		t.Errorf("a certificate without a CA: %v", err)
	}
	if _, err := (Files{}).Client(""); !errors.Is(err, ErrNoCA) {
		t.Errorf("no CA: %v", err)
	}
}

// Concurrent callers (a worker's activities) end with a key that matches the certificate.
func TestEnsureClientConcurrent(t *testing.T) {
	ca := newCA(t)
	now := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// far enough ahead that every caller renews
			if _, _, err := ca.EnsureClient(WorkerClient, now.Add(time.Duration(i)*time.Minute+DefaultValidity)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	f, _, err := ca.EnsureClient(WorkerClient, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.LoadX509KeyPair(f.Cert, f.Key); err != nil {
		t.Fatalf("key and certificate do not match: %v", err)
	}
}

// HTTPSOnly refuses http URLs before any connection, and passes https ones on.
func TestHTTPSOnly(t *testing.T) {
	var sent []string
	rt := HTTPSOnly(roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent = append(sent, r.URL.String())
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}, nil
	}))
	c := &http.Client{Transport: rt}
	if _, err := c.Get("http://10.0.0.1:8008/primary"); !errors.Is(err, ErrPlainHTTP) {
		t.Errorf("http: %v, want ErrPlainHTTP", err)
	}
	if resp, err := c.Get("https://10.0.0.1:8008/primary"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("https: %v %v", resp, err)
	}
	if len(sent) != 1 || !strings.HasPrefix(sent[0], "https://") {
		t.Errorf("sent %v, want the https request only", sent)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
