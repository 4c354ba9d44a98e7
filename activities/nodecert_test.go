package activities

import (
	"slices"
	"testing"
)

// A node reached at another address than its inventory one (an SSH jump, a DNS name) carries
// that name too: it is what the worker and the other members verify.
func TestNodeCertRequestNames(t *testing.T) {
	cases := []struct {
		n         int
		node      Node
		ips, dnss []string
	}{
		{1, Node{Addr: "10.0.0.11", Name: "pg-1", SSHHost: "10.0.0.11"}, []string{"10.0.0.11", "127.0.0.1"}, []string{"pg-1", "localhost"}},
		{2, Node{Addr: "10.0.0.11", Name: "pg-1", SSHHost: "192.168.1.5"}, []string{"10.0.0.11", "127.0.0.1", "192.168.1.5"}, []string{"pg-1", "localhost"}},
		{3, Node{Addr: "10.0.0.11", Name: "pg-1", SSHHost: "fd00::11"}, []string{"10.0.0.11", "127.0.0.1", "fd00::11"}, []string{"pg-1", "localhost"}},
		{4, Node{Addr: "10.0.0.11", Name: "pg-1", SSHHost: "pg-1.example.com"}, []string{"10.0.0.11", "127.0.0.1"}, []string{"pg-1", "localhost", "pg-1.example.com"}},
		{5, Node{Addr: "10.0.0.11", Name: "pg-1"}, []string{"10.0.0.11", "127.0.0.1"}, []string{"pg-1", "localhost"}},
	}
	for _, c := range cases {
		r := NodeCertRequest(c.node)
		if !slices.Equal(r.IPs, c.ips) || !slices.Equal(r.DNS, c.dnss) || r.Validate() != nil {
			t.Errorf("%d: IPs %v DNS %v (valid: %v), want %v %v", c.n, r.IPs, r.DNS, r.Validate(), c.ips, c.dnss)
		}
	}
}
