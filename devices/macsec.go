package devices

import (
	"fmt"
	"net"
)

// Macsec is a MACsec (IEEE 802.1AE) device on Parent: Ethernet frames
// sent through it are authenticated and, with Encrypt, encrypted, with
// the SecTAG of its secure channel. Its keys are given with
// MacsecConfig after it is made.
type Macsec struct {
	Name, Parent string
	// Port is the port of the transmit secure channel's identifier
	// (SCI: Parent's address and the port), 1..65535; 0 means 1.
	Port int `json:",omitempty"`
	// Cipher is "gcm-aes-128" (the default, ""), "gcm-aes-256",
	// "gcm-aes-xpn-128" or "gcm-aes-xpn-256".
	Cipher string `json:",omitempty"`
	// ICVLen is the integrity check value's length in bytes, 8..16; 0
	// means 16.
	ICVLen int `json:",omitempty"`
	// Encrypt: frames are encrypted, not only authenticated; nil means
	// on.
	Encrypt *bool `json:",omitempty"`
	// EncodingSA is the association number (0..3) frames are sent with.
	EncodingSA int `json:",omitempty"`
	// Validation is how received frames are checked: "strict" (the
	// default, ""), "check" or "disabled".
	Validation string `json:",omitempty"`
	// ReplayWindow, if not nil, turns replay protection on with this
	// window (0 drops every frame out of order).
	ReplayWindow *uint32 `json:",omitempty"`
	// IncludeSCI puts the SCI in every SecTAG (send_sci).
	IncludeSCI bool `json:",omitempty"`
}

// LinkName returns the device's name.
func (m Macsec) LinkName() string { return m.Name }

// Kind returns "macsec".
func (Macsec) Kind() string { return "macsec" }

// MacsecCiphers are the cipher suites Macsec takes, by their IEEE
// 802.1AE identifiers, with their key lengths in bytes.
var MacsecCiphers = map[string]struct {
	ID     uint64
	KeyLen int
	XPN    bool
}{
	"gcm-aes-128":     {0x0080C20001000001, 16, false},
	"gcm-aes-256":     {0x0080C20001000002, 32, false},
	"gcm-aes-xpn-128": {0x0080C20001000003, 16, true},
	"gcm-aes-xpn-256": {0x0080C20001000004, 32, true},
}

// CipherName is Cipher with the default filled in.
func (m Macsec) CipherName() string {
	if m.Cipher == "" {
		return "gcm-aes-128"
	}
	return m.Cipher
}

// Validate checks the name, Parent (required), Port, Cipher, ICVLen,
// EncodingSA and Validation.
func (m Macsec) Validate() error {
	c, err := newCheck(m.Kind(), m.Name)
	if err != nil {
		return err
	}
	if err := c.device("Parent", m.Parent, true); err != nil {
		return err
	}
	if err := c.intRange("Port", m.Port, 0, 65535); err != nil {
		return err
	}
	if _, ok := MacsecCiphers[m.CipherName()]; !ok {
		return c.fail("Cipher", "%q is not one of gcm-aes-128, gcm-aes-256, gcm-aes-xpn-128, gcm-aes-xpn-256", m.Cipher)
	}
	if m.ICVLen != 0 {
		if err := c.intRange("ICVLen", m.ICVLen, 8, 16); err != nil {
			return err
		}
	}
	if err := c.intRange("EncodingSA", m.EncodingSA, 0, 3); err != nil {
		return err
	}
	return c.oneOf("Validation", m.Validation, "", "strict", "check", "disabled")
}

// MacsecSA is a secure association of a MacsecConfig: association
// number AN (0..3) with its key.
type MacsecSA struct {
	AN int
	// PN is the next packet number (transmit) or the lowest acceptable
	// one (receive); 0 means 1.
	PN uint64 `json:",omitempty"`
	// Key is the SAK, 16 or 32 bytes as the device's cipher wants.
	Key []byte `json:",omitempty"`
	// KeyID identifies the key, up to 16 bytes (padded with zeros).
	KeyID []byte `json:",omitempty"`
	// Inactive leaves the association off.
	Inactive bool `json:",omitempty"`
	// SSCI and Salt (12 bytes) are for the XPN ciphers.
	SSCI uint32 `json:",omitempty"`
	Salt []byte `json:",omitempty"`
}

// MacsecRxSC is a receive secure channel: the peer's SCI (its address
// and port) and its associations.
type MacsecRxSC struct {
	// Address is the peer's hardware address; Port its SCI port (0: 1).
	Address string
	Port    int `json:",omitempty"`
	SAs     []MacsecSA
}

// SCI is the channel's 64-bit identifier as the kernel keeps it: the
// address then the port, big-endian, as 8 bytes.
func (r MacsecRxSC) SCI() ([8]byte, error) { return MacsecSCI(r.Address, r.Port) }

// MacsecSCI makes an SCI of an address and a port (0 means 1).
func MacsecSCI(addr string, port int) ([8]byte, error) {
	var sci [8]byte
	mac, err := net.ParseMAC(addr)
	if err != nil || len(mac) != 6 {
		return sci, fmt.Errorf("%q is not an Ethernet address", addr)
	}
	if port == 0 {
		port = 1
	}
	copy(sci[:6], mac)
	sci[6], sci[7] = byte(port>>8), byte(port)
	return sci, nil
}

// MacsecConfig is the keying of a Macsec device (ip macsec add): its
// transmit associations and its receive channels with theirs.
type MacsecConfig struct {
	// Link is the Macsec device's name.
	Link string
	// Cipher is the device's cipher ("" for gcm-aes-128): it sets the
	// key length and whether SSCI and Salt are needed.
	Cipher string `json:",omitempty"`
	TxSAs  []MacsecSA
	RxSCs  []MacsecRxSC
}

// Validate checks the link name, every association (AN, key length for
// the cipher, key id length, XPN salt) and every channel's SCI.
func (m MacsecConfig) Validate() error {
	c, err := newCheck("macsec", m.Link)
	if err != nil {
		return err
	}
	cipher := m.Cipher
	if cipher == "" {
		cipher = "gcm-aes-128"
	}
	suite, ok := MacsecCiphers[cipher]
	if !ok {
		return c.fail("Cipher", "%q is not one of gcm-aes-128, gcm-aes-256, gcm-aes-xpn-128, gcm-aes-xpn-256", m.Cipher)
	}
	checkSA := func(field string, sa MacsecSA) error {
		switch {
		case sa.AN < 0 || sa.AN > 3:
			return c.fail(field, "AN %d is out of range 0..3", sa.AN)
		case len(sa.Key) != suite.KeyLen:
			return c.fail(field, "key is %d bytes, %s wants %d", len(sa.Key), cipher, suite.KeyLen)
		case len(sa.KeyID) > 16:
			return c.fail(field, "KeyID is %d bytes, above 16", len(sa.KeyID))
		case !suite.XPN && sa.PN > 0xffffffff:
			return c.fail(field, "PN %d is above 32 bits; only the XPN ciphers take it", sa.PN)
		case !suite.XPN && (sa.SSCI != 0 || len(sa.Salt) != 0):
			return c.fail(field, "SSCI and Salt are for the XPN ciphers")
		case suite.XPN && len(sa.Salt) != 12:
			return c.fail(field, "Salt is %d bytes, %s wants 12", len(sa.Salt), cipher)
		}
		return nil
	}
	for i, sa := range m.TxSAs {
		if err := checkSA(fmt.Sprintf("TxSAs[%d]", i), sa); err != nil {
			return err
		}
	}
	for i, sc := range m.RxSCs {
		field := fmt.Sprintf("RxSCs[%d]", i)
		if _, err := sc.SCI(); err != nil {
			return c.fail(field, "Address: %v", err)
		}
		if sc.Port < 0 || sc.Port > 65535 {
			return c.fail(field, "Port %d is out of range 0..65535", sc.Port)
		}
		for j, sa := range sc.SAs {
			if err := checkSA(fmt.Sprintf("%s.SAs[%d]", field, j), sa); err != nil {
				return err
			}
		}
	}
	return nil
}
