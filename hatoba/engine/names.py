"""Docker-style generated container names (``adjective_surname``) and container-name validation.

The word lists are hatoba's own: adjectives describing a temperament, and surnames of notable
scientists, mathematicians and engineers.  Generation mirrors dockerd's behaviour: one plain attempt,
then attempts with a random digit appended, then (rarely needed) larger numeric suffixes.
"""

import random
from collections.abc import Callable

__all__ = [
    "ADJECTIVES",
    "SURNAMES",
    "generate",
    "invalid_name_message",
    "valid_name",
    "validate_name",
]

ADJECTIVES: tuple[str, ...] = (
    "agile", "amber", "amiable", "ample", "ardent", "artful", "astute", "balmy", "blithe", "bold",
    "bouncy", "brave", "breezy", "bright", "brisk", "bubbly", "buoyant", "calm", "candid", "careful",
    "cheerful", "chipper", "civil", "clever", "cordial", "cosmic", "cozy", "crisp", "curious", "dapper",
    "daring", "dashing", "deft", "devoted", "diligent", "dreamy", "dynamic", "eager", "earnest", "easygoing",
    "elated", "electric", "elegant", "epic", "fearless", "festive", "fluent", "fond", "frank", "friendly",
    "gallant", "generous", "gentle", "gifted", "glad", "gleeful", "golden", "graceful", "hardy", "hearty",
    "helpful", "honest", "humble", "inventive", "jaunty", "jolly", "joyful", "keen", "kindly", "lively",
    "loyal", "lucid", "lucky", "mellow", "merry", "mighty", "mindful", "modest", "nimble", "noble",
    "patient", "placid", "playful", "plucky", "polite", "proud", "quick", "quiet", "radiant", "rapid",
    "resolute", "robust", "rustic", "sensible", "serene", "sincere", "snappy", "spirited", "sprightly",
    "steady", "sturdy", "sunny", "swift", "tenacious", "thrifty", "tidy", "tranquil", "trusty", "valiant",
    "vivid", "warm", "witty", "zesty",
)  # fmt: skip

SURNAMES: tuple[str, ...] = (
    # computing
    "aiken", "allen", "amdahl", "atanasoff", "babbage", "backus", "baran", "bartik", "boole", "brooks",
    "cerf", "church", "codd", "conway", "corbato", "cray", "dijkstra", "eckert", "engelbart", "estrin",
    "floyd", "goldwasser", "hamming", "hartmanis", "hoare", "hollerith", "holberton", "hopper", "huffman",
    "iverson", "kahan", "kahn", "karp", "kay", "kernighan", "kildall", "knuth", "lamport", "licklider",
    "liskov", "lovelace", "mauchly", "mccarthy", "merkle", "metcalfe", "micali", "minsky", "naur", "perlis",
    "postel", "rabin", "ritchie", "rivest", "sammet", "shamir", "sutherland", "tarjan", "thacker", "turing",
    "ullman", "wilkes", "wing", "wirth", "zuse",
    # mathematics
    "abel", "agnesi", "archimedes", "aryabhata", "banach", "bernoulli", "brahmagupta", "cantor", "cauchy",
    "chebyshev", "dedekind", "descartes", "erdos", "euclid", "euler", "fermat", "fibonacci", "fourier",
    "galois", "gauss", "germain", "godel", "grothendieck", "hilbert", "hypatia", "jacobi", "khayyam",
    "kolmogorov", "kovalevskaya", "lagrange", "laplace", "leibniz", "lyapunov", "mandelbrot", "markov",
    "mirzakhani", "napier", "noether", "pascal", "poincare", "ramanujan", "riemann", "somerville", "weierstrass",
    # physics and astronomy
    "ampere", "avogadro", "bardeen", "becquerel", "bethe", "bohr", "boltzmann", "bose", "brahe", "burnell",
    "cannon", "carnot", "cavendish", "chandrasekhar", "compton", "copernicus", "coulomb", "curie", "dirac",
    "doppler", "einstein", "faraday", "fermi", "feynman", "foucault", "fraunhofer", "fresnel", "galileo",
    "gamow", "heisenberg", "hertz", "hubble", "huygens", "joule", "kelvin", "kepler", "landau", "leavitt",
    "lorentz", "maxwell", "meitner", "michelson", "millikan", "newton", "ohm", "pauli", "planck", "raman",
    "rayleigh", "roentgen", "rubin", "rutherford", "saha", "schrodinger", "szilard", "tesla", "volta",
    "wigner", "yukawa", "zeeman",
    # chemistry, biology and medicine
    "arrhenius", "banting", "bunsen", "carver", "cori", "crick", "dalton", "darwin", "doudna", "elion",
    "fleming", "franklin", "goodall", "harvey", "hodgkin", "jenner", "koch", "lavoisier", "linnaeus",
    "lister", "margulis", "mcclintock", "mendel", "mendeleev", "pasteur", "pauling", "priestley", "salk",
    "sanger", "semmelweis", "vesalius", "wallace", "yalow",
    # engineering and invention
    "armstrong", "baird", "bell", "benz", "bessemer", "brunel", "diesel", "eiffel", "fessenden",
    "goddard", "hamilton", "heaviside", "kalman", "kilby", "lamarr", "marconi", "morse", "noyce",
    "nyquist", "roebling", "shannon", "sikorsky", "steinmetz", "stephenson", "telford", "tsiolkovsky",
    "watt", "whittle", "wiener", "zworykin",
)  # fmt: skip

_NAME_HEAD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NAME_TAIL = _NAME_HEAD | frozenset("_.-")
_PLAIN_ATTEMPTS = 1  # attempts without a suffix
_DIGIT_ATTEMPTS = 5  # then attempts with one random digit appended (dockerd makes 6 attempts in all)
_WIDE_ATTEMPTS = 1000  # then attempts with a wider random number


def generate(exists: Callable[[str], bool], *, rng: random.Random | None = None) -> str:
    """Return a fresh ``adjective_surname`` name for which ``exists(name)`` is false.

    The first attempt has no suffix; after a collision a random digit is appended ("bold_curie7"),
    like dockerd.  Should those be exhausted too, a random number up to 9999 is appended.  ``exists``
    receives the bare name (no leading "/").  ``rng`` makes the choice reproducible in tests.
    """
    r = rng if rng is not None else random
    for attempt in range(_PLAIN_ATTEMPTS + _DIGIT_ATTEMPTS + _WIDE_ATTEMPTS):
        name = f"{r.choice(ADJECTIVES)}_{r.choice(SURNAMES)}"
        if attempt >= _PLAIN_ATTEMPTS + _DIGIT_ATTEMPTS:
            name += str(r.randrange(10000))
        elif attempt >= _PLAIN_ATTEMPTS:
            name += str(r.randrange(10))
        if not exists(name):
            return name
    raise RuntimeError("unable to generate a unique container name")


def valid_name(name: str) -> bool:
    """Docker's container-name rule ``^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`` (so at least two characters)."""
    if name.startswith("/"):
        name = name[1:]
    return len(name) >= 2 and name[0] in _NAME_HEAD and all(ch in _NAME_TAIL for ch in name[1:])


def invalid_name_message(name: str) -> str:
    """The error text dockerd returns for an invalid container name."""
    return f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"


def validate_name(name: str) -> str:
    """Return ``name`` without a leading "/"; raise ValueError(:func:`invalid_name_message`) if invalid."""
    if not valid_name(name):
        raise ValueError(invalid_name_message(name))
    return name[1:] if name.startswith("/") else name
