import Edda
