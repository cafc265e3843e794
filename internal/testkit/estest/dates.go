package estest

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Date formats, as Elasticsearch's DateFormatters reads them: a mapping's
// format is a list of named formats joined by "||", and a value fits when
// one of them parses it. Only the named formats used by the templates
// teleportbeat's tests install are known; any other is refused when the
// template is put, so that a new one is noticed rather than accepted
// blindly.

const defaultDateFormat = "strict_date_optional_time||epoch_millis"

// Elasticsearch's default dynamic_date_formats (RootObjectMapper).
var defaultDynamicDateFormats = []string{"strict_date_optional_time", "yyyy/MM/dd HH:mm:ss Z||yyyy/MM/dd Z"}

var knownDateFormats = map[string]func(string) bool{
	"strict_date_optional_time":       func(s string) bool { return isoDateOptionalTime(s, true) },
	"strict_date_optional_time_nanos": func(s string) bool { return isoDateOptionalTime(s, true) },
	"date_optional_time":              func(s string) bool { return isoDateOptionalTime(s, false) },
	"strict_date_time":                isoDateTime,
	"date_time":                       isoDateTime,
	"epoch_millis":                    isEpoch,
	"epoch_second":                    isEpoch,
	"yyyy/MM/dd HH:mm:ss Z":           slashDateTimeZone,
	"yyyy/MM/dd Z":                    slashDateZone,
}

func checkDateFormat(format string) error {
	for _, f := range strings.Split(format, "||") {
		if _, ok := knownDateFormats[strings.TrimSpace(f)]; !ok {
			return fmt.Errorf("estest: date format %q is not known to the stand-in", f)
		}
	}
	return nil
}

// parsesAsDate reports whether a string value fits the format.
func parsesAsDate(format, s string) bool {
	for _, f := range strings.Split(format, "||") {
		if knownDateFormats[strings.TrimSpace(f)](s) {
			return true
		}
	}
	return false
}

// numberAsDate reports whether a number token fits the format: only the
// epoch formats read numbers (DateFieldMapper reads a number token as its
// text).
func numberAsDate(format string, n json.Number) bool {
	for _, f := range strings.Split(format, "||") {
		switch strings.TrimSpace(f) {
		case "epoch_millis", "epoch_second":
			if isEpoch(string(n)) {
				return true
			}
		}
	}
	return false
}

func isEpoch(s string) bool {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return false
	}
	// EpochTime accepts an optional sign, digits and an optional fraction.
	s = strings.TrimPrefix(s, "-")
	intPart, frac, _ := strings.Cut(s, ".")
	return intPart != "" && allDigits(intPart) && (frac == "" || allDigits(frac))
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// digits reads exactly n digits at s[i:], returning their value.
func digits(s string, i, n int) (int, bool) {
	if i+n > len(s) || !allDigits(s[i:i+n]) {
		return 0, false
	}
	v, _ := strconv.Atoi(s[i : i+n])
	return v, true
}

// isoDateOptionalTime is (strict_)date_optional_time: yyyy[-MM[-dd]]
// optionally followed by 'T' and HH[:mm[:ss[.fraction]]] and a zone (Z,
// +HH, +HHmm, +HH:mm). The strict form wants two-digit months, days and
// hours and a four-digit year.
func isoDateOptionalTime(s string, strict bool) bool {
	date, rest, hasTime := strings.Cut(s, "T")
	if !isoDate(date, strict) {
		return false
	}
	if !hasTime {
		return true
	}
	return isoTime(rest, strict, true)
}

func isoDate(s string, strict bool) bool {
	parts := strings.Split(s, "-")
	if len(parts) > 3 || len(parts[0]) == 0 {
		return false
	}
	if strict && len(parts[0]) != 4 {
		return false
	}
	if !allDigits(parts[0]) {
		return false
	}
	limits := []int{12, 31}
	for i, p := range parts[1:] {
		if (strict && len(p) != 2) || len(p) == 0 || len(p) > 2 || !allDigits(p) {
			return false
		}
		v, _ := strconv.Atoi(p)
		if v < 1 || v > limits[i] {
			return false
		}
	}
	return true
}

// isoTime reads HH[:mm[:ss[(.|,)fraction]]][zone].
func isoTime(s string, strict, zoneOptional bool) bool {
	i := 0
	limits := []int{23, 59, 59}
	for f := 0; f < 3; f++ {
		if f > 0 {
			if i >= len(s) || s[i] != ':' {
				break
			}
			i++
		}
		v, ok := digits(s, i, 2)
		if !ok || v > limits[f] {
			return false
		}
		i += 2
		if f == 2 && i < len(s) && (s[i] == '.' || s[i] == ',') {
			i++
			n := 0
			for i < len(s) && s[i] >= '0' && s[i] <= '9' {
				i++
				n++
			}
			if n == 0 || n > 9 {
				return false
			}
		}
	}
	zone := s[i:]
	if zone == "" {
		return zoneOptional
	}
	return isZone(zone)
}

func isZone(z string) bool {
	if z == "Z" {
		return true
	}
	if z[0] != '+' && z[0] != '-' {
		return false
	}
	z = z[1:]
	switch len(z) {
	case 2:
		return allDigits(z)
	case 4:
		return allDigits(z)
	case 5:
		return z[2] == ':' && allDigits(z[:2]) && allDigits(z[3:])
	}
	return false
}

// isoDateTime is strict_date_time: a full date and time with a zone.
func isoDateTime(s string) bool {
	date, rest, ok := strings.Cut(s, "T")
	if !ok || len(date) != 10 || !isoDate(date, true) {
		return false
	}
	if len(rest) < 8 || rest[2] != ':' || rest[5] != ':' {
		return false
	}
	return isoTime(rest, true, false)
}

// slashDateTimeZone is "yyyy/MM/dd HH:mm:ss Z".
func slashDateTimeZone(s string) bool {
	date, rest, ok := strings.Cut(s, " ")
	if !ok || !slashDate(date) {
		return false
	}
	tm, zone, ok := strings.Cut(rest, " ")
	return ok && len(tm) == 8 && isoTime(tm, true, true) && isZone(zone)
}

// slashDateZone is "yyyy/MM/dd Z".
func slashDateZone(s string) bool {
	date, zone, ok := strings.Cut(s, " ")
	return ok && slashDate(date) && isZone(zone)
}

func slashDate(s string) bool {
	return len(s) == 10 && s[4] == '/' && s[7] == '/' && isoDate(strings.ReplaceAll(s, "/", "-"), true)
}
