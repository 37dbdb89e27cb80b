package pii

import (
	"errors"
	"strings"
	"sync"
	"testing"
)

func TestNewHasherRefusesWeakKeys(t *testing.T) {
	for _, key := range []string{"", "short", strings.Repeat(" ", 32), "\t\n" + strings.Repeat(" ", 20)} {
		if _, err := NewHasher([]byte(key)); !errors.Is(err, ErrWeakKey) {
			t.Errorf("NewHasher(%q) err = %v, want ErrWeakKey", key, err)
		}
	}
}

func TestTokensAreKeyedAndSeparatedByKind(t *testing.T) {
	a, _ := NewHasher([]byte("0123456789abcdef-deployment-a"))
	b, _ := NewHasher([]byte("0123456789abcdef-deployment-b"))
	if a.Email("ada@example.com") == b.Email("ada@example.com") {
		t.Error("two keys gave the same token: the token is not keyed")
	}
	if a.Token(KindEmail, "x") == a.Token(KindPhone, "x") {
		t.Error("email and phone tokens of the same text are equal")
	}
	if got, want := a.Email("  Ada@Example.COM "), a.Email("ada@example.com"); got != want {
		t.Errorf("Email not normalized: %s != %s", got, want)
	}
	if got, want := a.Phone("+1 (415) 555-0100"), a.Phone("+14155550100"); got != want {
		t.Errorf("Phone not normalized: %s != %s", got, want)
	}
	if a.Email(" ") != "" || a.Phone("n/a") != "" {
		t.Error("empty values must give empty tokens")
	}
	if tok := a.Email("ada@example.com"); len(tok) != 64 || strings.Contains(tok, "ada") {
		t.Errorf("token %q: want 64 hex characters without the value", tok)
	}
}

func TestHasherConcurrentUse(t *testing.T) {
	h, _ := NewHasher([]byte("0123456789abcdef0123"))
	want := h.Email("ada@example.com")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				if got := h.Email("ada@example.com"); got != want {
					t.Errorf("concurrent token %s != %s", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}
