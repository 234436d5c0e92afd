package config

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// kind is the value type of a configuration key.
type kind int

const (
	kindBool kind = iota
	kindInt
	kindUint
	kindFloat
	kindString
	kindStrings
	kindDuration
	kindSize
	kindRate
)

var (
	durationType = reflect.TypeFor[time.Duration]()
	sizeType     = reflect.TypeFor[Size]()
	rateType     = reflect.TypeFor[Rate]()
)

// typeText names a kind in docs and error messages.
func (k kind) typeText() string {
	switch k {
	case kindBool:
		return "bool"
	case kindInt, kindUint:
		return "integer"
	case kindFloat:
		return "number"
	case kindString:
		return "string"
	case kindStrings:
		return "list"
	case kindDuration:
		return "duration"
	case kindSize:
		return "size"
	case kindRate:
		return "rate"
	}
	return "value"
}

// syntaxText describes the accepted syntax of a kind (TM-CFG-1001 messages).
func (k kind) syntaxText() string {
	switch k {
	case kindBool:
		return "true or false"
	case kindInt:
		return "an integer"
	case kindUint:
		return "a non-negative integer"
	case kindFloat:
		return "a number"
	case kindString:
		return "a string"
	case kindStrings:
		return "a list of strings (comma-separated in env and --set)"
	case kindDuration:
		return "a duration such as 100ms, 30s, 2h"
	case kindSize:
		return "a size in bytes or with KiB, MiB, GiB (e.g. 64KiB)"
	case kindRate:
		return "a rate such as 500Kbps, 20Mbps, 1Gbps"
	}
	return "a value"
}

// leaf is one configuration key.
type leaf struct {
	key       string // dotted path, e.g. "storage.wal.sync_mode"
	name      string // last path element
	index     []int  // reflect field index path from Config
	kind      kind
	owner     string // Go type name of the containing struct (docs lookup)
	field     string // Go field name (docs lookup)
	def       string // default in configuration syntax
	hasLo     bool
	hasHi     bool
	lo, hi    float64 // bounds for kindFloat
	loI, hiI  int64   // bounds for integer-like kinds
	loS, hiS  string  // bounds as written in the tag
	enum      []string
	format    string
	required  bool
	unit      string
	hot       bool
	clusterWd bool
}

// section is a non-leaf node of the key tree.
type section struct {
	key      string // dotted path; "" for the root
	name     string
	owner    string
	field    string
	children []any // *leaf or *section, in struct order
}

type schemaT struct {
	root     *section
	leaves   []*leaf
	byKey    map[string]*leaf
	sections map[string]*section
}

var (
	schemaOnce sync.Once
	schemaVal  *schemaT
)

// schema returns the key tree built from the Config struct tags. A malformed
// tag is a programming error caught by the package tests, so it panics.
func schema() *schemaT {
	schemaOnce.Do(func() {
		s := &schemaT{byKey: map[string]*leaf{}, sections: map[string]*section{}}
		s.root = &section{}
		s.sections[""] = s.root
		s.walk(s.root, reflect.TypeFor[Config](), nil)
		schemaVal = s
	})
	return schemaVal
}

func (s *schemaT) walk(sec *section, t reflect.Type, index []int) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := f.Tag.Get("key")
		if name == "" {
			panic(fmt.Sprintf("config: field %s.%s has no key tag", t.Name(), f.Name))
		}
		key := name
		if sec.key != "" {
			key = sec.key + "." + name
		}
		idx := append(append([]int(nil), index...), i)
		if f.Type.Kind() == reflect.Struct && f.Type != durationType {
			sub := &section{key: key, name: name, owner: t.Name(), field: f.Name}
			sec.children = append(sec.children, sub)
			s.sections[key] = sub
			s.walk(sub, f.Type, idx)
			continue
		}
		l := &leaf{key: key, name: name, index: idx, owner: t.Name(), field: f.Name}
		l.kind = kindOf(f.Type)
		def, ok := f.Tag.Lookup("default")
		if !ok {
			panic("config: " + key + " has no default tag")
		}
		l.def = def
		if e := f.Tag.Get("enum"); e != "" {
			l.enum = strings.Split(e, "|")
		}
		l.format = f.Tag.Get("format")
		l.required = f.Tag.Get("required") == "true"
		l.unit = f.Tag.Get("unit")
		fl := f.Tag.Get("flags")
		l.hot = strings.Contains(fl, "H")
		l.clusterWd = strings.Contains(fl, "C")
		if r := f.Tag.Get("range"); r != "" {
			if err := l.setRange(r); err != nil {
				panic("config: " + key + ": bad range tag: " + err.Error())
			}
		}
		if _, err := l.parse(def); err != nil {
			panic("config: " + key + ": bad default tag: " + err.Error())
		}
		sec.children = append(sec.children, l)
		s.leaves = append(s.leaves, l)
		s.byKey[key] = l
	}
}

func kindOf(t reflect.Type) kind {
	switch t {
	case durationType:
		return kindDuration
	case sizeType:
		return kindSize
	case rateType:
		return kindRate
	}
	switch t.Kind() {
	case reflect.Bool:
		return kindBool
	case reflect.Int, reflect.Int32, reflect.Int64:
		return kindInt
	case reflect.Uint, reflect.Uint32, reflect.Uint64:
		return kindUint
	case reflect.Float64:
		return kindFloat
	case reflect.String:
		return kindString
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			return kindStrings
		}
	}
	panic("config: unsupported field type " + t.String())
}

func (l *leaf) setRange(r string) error {
	lo, hi, ok := strings.Cut(r, "..")
	if !ok {
		return errors.New("want lo..hi")
	}
	l.loS, l.hiS = lo, hi
	bound := func(s string) (int64, float64, error) {
		v, err := l.parse(s)
		if err != nil {
			return 0, 0, err
		}
		if l.kind == kindFloat {
			return 0, v.Float(), nil
		}
		n, ok := l.integer(v)
		if !ok {
			return 0, 0, errors.New("range on a non-numeric key")
		}
		return n, 0, nil
	}
	var err error
	if lo != "" {
		l.hasLo = true
		if l.loI, l.lo, err = bound(lo); err != nil {
			return err
		}
	}
	if hi != "" {
		l.hasHi = true
		if l.hiI, l.hi, err = bound(hi); err != nil {
			return err
		}
	}
	return nil
}

// parseError carries the error code for a value that does not parse.
type parseError struct {
	code string
	err  error
}

func (e *parseError) Error() string { return e.err.Error() }

// parse converts configuration text into a value of the leaf's field type.
// A syntax error yields TM-CFG-1001, an overflowing number TM-CFG-1002.
func (l *leaf) parse(s string) (reflect.Value, error) {
	wrap := func(err error) error {
		code := CodeInvalidValue
		if errors.Is(err, errRange) {
			code = CodeOutOfRange
		}
		return &parseError{code: code, err: err}
	}
	var v any
	switch l.kind {
	case kindBool:
		switch strings.ToLower(s) {
		case "true":
			v = true
		case "false":
			v = false
		default:
			return reflect.Value{}, wrap(errSyntax)
		}
	case kindInt:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return reflect.Value{}, wrap(errRange)
			}
			return reflect.Value{}, wrap(errSyntax)
		}
		if n > math.MaxInt32 || n < math.MinInt32 {
			// No key needs more; keeps int fields portable to 32-bit builds.
			return reflect.Value{}, wrap(errRange)
		}
		v = int(n)
	case kindUint:
		if strings.HasPrefix(s, "-") {
			if _, err := strconv.ParseInt(s, 10, 64); err == nil {
				return reflect.Value{}, wrap(errRange)
			}
			return reflect.Value{}, wrap(errSyntax)
		}
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return reflect.Value{}, wrap(errRange)
			}
			return reflect.Value{}, wrap(errSyntax)
		}
		if n > math.MaxInt64 {
			return reflect.Value{}, wrap(errRange)
		}
		v = n
	case kindFloat:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			if errors.Is(err, strconv.ErrRange) {
				return reflect.Value{}, wrap(errRange)
			}
			return reflect.Value{}, wrap(errSyntax)
		}
		v = f
	case kindString:
		v = s
	case kindStrings:
		v = splitList(s)
	case kindDuration:
		d, err := ParseDuration(s)
		if err != nil {
			return reflect.Value{}, wrap(err)
		}
		v = d
	case kindSize:
		z, err := ParseSize(s)
		if err != nil {
			return reflect.Value{}, wrap(err)
		}
		v = z
	case kindRate:
		r, err := ParseRate(s)
		if err != nil {
			return reflect.Value{}, wrap(err)
		}
		v = r
	}
	return reflect.ValueOf(v), nil
}

// splitList splits a comma-separated list, trimming blanks and dropping
// empty elements; an empty list is nil.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// integer returns an integer-like value as int64.
func (l *leaf) integer(v reflect.Value) (int64, bool) {
	switch v.Kind() {
	case reflect.Int, reflect.Int32, reflect.Int64:
		return v.Int(), true
	case reflect.Uint, reflect.Uint32, reflect.Uint64:
		u := v.Uint()
		if u > math.MaxInt64 {
			return math.MaxInt64, true
		}
		return int64(u), true
	}
	return 0, false
}

// get returns the leaf's field in c.
func (l *leaf) get(c *Config) reflect.Value {
	return reflect.ValueOf(c).Elem().FieldByIndex(l.index)
}

// set stores a parsed value (converted to the field type) in c.
func (l *leaf) set(c *Config, v reflect.Value) {
	f := l.get(c)
	f.Set(v.Convert(f.Type()))
}

// text renders a field value in configuration syntax (lists comma-separated).
func (l *leaf) text(v reflect.Value) string {
	switch l.kind {
	case kindBool:
		return strconv.FormatBool(v.Bool())
	case kindInt:
		return strconv.FormatInt(v.Int(), 10)
	case kindUint:
		return strconv.FormatUint(v.Uint(), 10)
	case kindFloat:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	case kindString:
		return v.String()
	case kindStrings:
		return strings.Join(v.Interface().([]string), ",")
	case kindDuration:
		return FormatDuration(time.Duration(v.Int()))
	case kindSize:
		return Size(v.Int()).String()
	case kindRate:
		return Rate(v.Int()).String()
	}
	return fmt.Sprint(v.Interface())
}

// envName is the environment variable for the leaf (08-config §1).
func (l *leaf) envName() string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(l.key, ".", "__"))
}

// rangeText renders the tag bounds for docs and errors.
func (l *leaf) rangeText() string {
	switch {
	case l.hasLo && l.hasHi:
		return l.loS + " to " + l.hiS
	case l.hasLo:
		return "at least " + l.loS
	case l.hasHi:
		return "at most " + l.hiS
	}
	return ""
}

// KeyInfo describes one configuration key.
type KeyInfo struct {
	Key         string // dotted key, e.g. "storage.wal.sync_mode"
	Env         string // environment variable, e.g. "TOKMESH_STORAGE__WAL__SYNC_MODE"
	Type        string // bool, integer, number, string, list, duration, size, rate
	Default     string // default in configuration syntax (lists comma-separated)
	Range       string // bounds or allowed values, "" if free-form
	Unit        string // unit of plain numbers, "" if none
	Description string // the field's doc comment
	Hot         bool   // takes effect on reload without restart (H)
	ClusterWide bool   // held in Raft in cluster mode (C)
}

// Keys lists every configuration key in tree order.
func Keys() []KeyInfo {
	s := schema()
	out := make([]KeyInfo, 0, len(s.leaves))
	for _, l := range s.leaves {
		out = append(out, KeyInfo{
			Key: l.key, Env: l.envName(), Type: l.kind.typeText(), Default: l.def,
			Range: l.valuesText(), Unit: l.unit, Description: fieldDoc(l.owner, l.field),
			Hot: l.hot, ClusterWide: l.clusterWd,
		})
	}
	return out
}

// valuesText is the range, enum or format description of a leaf.
func (l *leaf) valuesText() string {
	if len(l.enum) > 0 {
		return strings.Join(l.enum, " | ")
	}
	if r := l.rangeText(); r != "" {
		return r
	}
	return formatText[l.format]
}

// Lookup returns the value of key in configuration syntax (lists
// comma-separated) and whether key exists.
func (c *Config) Lookup(key string) (string, bool) {
	l, ok := schema().byKey[key]
	if !ok {
		return "", false
	}
	return l.text(l.get(c)), true
}

// Set parses value as the type of key and stores it, as --set does. The
// result is not validated.
func (c *Config) Set(key, value string) *Error {
	l, ok := schema().byKey[key]
	if !ok {
		return unknownKeyErr(key, value, "", "")
	}
	v, err := l.parse(value)
	if err != nil {
		return l.parseErr(value, err)
	}
	l.set(c, v)
	return nil
}

// Tree returns the configuration as nested maps keyed by key names, for
// JSON output such as GET /admin/v1/config. Booleans and numbers keep their
// JSON types; durations, sizes and rates are strings in configuration
// syntax; lists are []string (never nil). The configuration holds no secrets.
func (c *Config) Tree() map[string]any {
	root := map[string]any{}
	for _, l := range schema().leaves {
		m := root
		parts := strings.Split(l.key, ".")
		for _, p := range parts[:len(parts)-1] {
			sub, ok := m[p].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[p] = sub
			}
			m = sub
		}
		v := l.get(c)
		var out any
		switch l.kind {
		case kindBool:
			out = v.Bool()
		case kindInt:
			out = v.Int()
		case kindUint:
			out = v.Uint()
		case kindFloat:
			out = v.Float()
		case kindStrings:
			out = append([]string{}, v.Interface().([]string)...)
		default:
			out = l.text(v)
		}
		m[parts[len(parts)-1]] = out
	}
	return root
}

// Changed lists the keys whose values differ between a and b, sorted.
// Reload uses it with KeyInfo.Hot to split applied from restart-required keys.
func Changed(a, b *Config) []string {
	var out []string
	for _, l := range schema().leaves {
		if l.text(l.get(a)) != l.text(l.get(b)) {
			out = append(out, l.key)
		}
	}
	sort.Strings(out)
	return out
}

// IsHot reports whether key takes effect on reload without a restart.
func IsHot(key string) bool {
	l, ok := schema().byKey[key]
	return ok && l.hot
}

// IsClusterWide reports whether key is held in Raft in cluster mode.
func IsClusterWide(key string) bool {
	l, ok := schema().byKey[key]
	return ok && l.clusterWd
}

// Default returns the default configuration (08-config §3), built from the
// default struct tags.
func Default() *Config {
	c := new(Config)
	for _, l := range schema().leaves {
		v, err := l.parse(l.def)
		if err != nil {
			panic("config: bad default for " + l.key) // checked in schema()
		}
		l.set(c, v)
	}
	return c
}

// Clone returns a deep copy of c.
func (c *Config) Clone() *Config {
	n := *c
	for _, l := range schema().leaves {
		if l.kind == kindStrings {
			src := l.get(c).Interface().([]string)
			if src != nil {
				l.get(&n).Set(reflect.ValueOf(append([]string(nil), src...)))
			}
		}
	}
	return &n
}
